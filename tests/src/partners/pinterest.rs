//! Pinterest Conversions API: `POST /v5/ad_accounts/{ad_account_id}/events`
//! (`?test=true`: validated and answered alike, not recorded by Pinterest)
//! with `Authorization: Bearer <token>` and `{"data": [...]}` of 1 to 1,000
//! events. Success is HTTP 200 `{"num_events_received",
//! "num_events_processed", "events": [{"status": "processed" | "failed",
//! "error_message", "warning_message"}]}`, in request order. Errors are
//! `{"code", "message"}`: 400 `4196` "The request was invalid." (not JSON,
//! no `data`, more than 1,000 events), 401 `2` "Authentication failed." (no
//! bearer token), 403 `29`, 429 `8`, 503 `4197`, and 422 "Not all events
//! were successfully processed." as `{"code", "message", "details"}` for
//! events that break the schema: a missing `event_name`, `action_source`,
//! `event_time` or `event_id`, a value outside the `event_name` and
//! `action_source` enums, a member the closed schema does not have,
//! identifiers that are not lists of SHA-256 digests, `custom_data.value`
//! that is not a string, or `user_data` without `em`, `hashed_maids`, or
//! the IP with the user agent. Pinterest documents neither the 422's code
//! nor the shape of its `details`: the fake repeats the status as the code
//! and lists each event's status and message under `details.events`.

use axum::http::StatusCode;
use axum::response::Response;
use eventconnectors_proto::v1::DataType;
use serde_json::{Map, Value, json};

use super::{Checked, FakeApi, Incoming, SampleConnector, is_sha256_hex};

/// 1 to 1,000 events per request.
const MAX_EVENTS: usize = 1000;
/// What `event_name` may be.
const EVENT_NAMES: [&str; 15] = [
    "add_payment_info",
    "add_to_cart",
    "add_to_wishlist",
    "app_install",
    "checkout",
    "custom",
    "initiate_checkout",
    "lead",
    "page_visit",
    "search",
    "signup",
    "subscribe",
    "view_category",
    "view_content",
    "watch_video",
];
/// What `action_source` may be.
const ACTION_SOURCES: [&str; 4] = ["app_android", "app_ios", "web", "offline"];
/// The members of an event (the schema is closed).
const EVENT_MEMBERS: [&str; 22] = [
    "event_name",
    "action_source",
    "event_time",
    "event_id",
    "event_source_url",
    "opt_out",
    "partner_name",
    "user_data",
    "custom_data",
    "app_id",
    "app_name",
    "app_version",
    "device_brand",
    "device_carrier",
    "device_model",
    "device_type",
    "os_version",
    "wifi",
    "language",
    "app_info",
    "device_info",
    "advertiser_tracking_enabled",
];
/// `user_data` lists of SHA-256 digests.
const HASHED: [&str; 12] = [
    "em",
    "ph",
    "ge",
    "db",
    "ln",
    "fn",
    "ct",
    "st",
    "zp",
    "country",
    "external_id",
    "hashed_maids",
];

/// The fake Pinterest Conversions API.
#[derive(Debug, Clone, Copy)]
pub struct Pinterest;

impl FakeApi for Pinterest {
    fn partner(&self) -> &'static str {
        "pinterest"
    }

    fn routes(&self) -> &'static [&'static str] {
        &["/v5/ad_accounts/{account}/events"]
    }

    fn check(&self, request: &Incoming<'_>) -> Checked {
        let parsed: Option<Value> = serde_json::from_slice(request.body).ok();
        let data = parsed
            .as_ref()
            .and_then(|body| body["data"].as_array())
            .cloned();
        let events = data.as_ref().map_or(0, Vec::len);
        let token = request
            .header("authorization")
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or_default();
        if token.trim().is_empty() {
            return Checked::refuse(
                events,
                error(StatusCode::UNAUTHORIZED, 2, "Authentication failed."),
            );
        }
        let Some(data) = data.filter(|d| (1..=MAX_EVENTS).contains(&d.len())) else {
            return Checked::refuse(
                events,
                error(StatusCode::BAD_REQUEST, 4196, "The request was invalid."),
            );
        };
        let problems: Vec<Option<String>> = data.iter().map(problem).collect();
        if problems.iter().all(Option::is_none) {
            return Checked::pass(events);
        }
        let statuses: Vec<Value> = problems
            .iter()
            .map(|problem| match problem {
                Some(message) => {
                    json!({"status": "failed", "error_message": message, "warning_message": null})
                }
                None => {
                    json!({"status": "processed", "error_message": null, "warning_message": null})
                }
            })
            .collect();
        let body = json!({
            "code": 422,
            "message": "Not all events were successfully processed.",
            "details": {"events": statuses},
        });
        Checked::refuse(events, super::json(StatusCode::UNPROCESSABLE_ENTITY, &body))
    }

    fn accept(&self, _request: &Incoming<'_>, events: usize) -> Response {
        processed(events, events)
    }

    fn error(
        &self,
        status: StatusCode,
        code: &str,
        message: &str,
        _request: &Incoming<'_>,
    ) -> Response {
        error(
            status,
            code.parse().expect("checked when scripted"),
            message,
        )
    }

    /// The documented `{code, message}` of each error status; others as
    /// plain text.
    fn status(&self, status: StatusCode, _request: &Incoming<'_>) -> Response {
        let (code, message) = match status.as_u16() {
            400 => (4196, "The request was invalid."),
            401 => (2, "Authentication failed."),
            403 => (29, "You are not permitted to access that resource."),
            429 => (
                8,
                "This request exceeded a rate limit. This can happen if the client exceeds one\nof the published rate limits within a short time window.",
            ),
            503 => (
                4197,
                "The endpoint has been ramped down and is currently not accepting any traffic.",
            ),
            _ => return super::plain(status, status.canonical_reason().unwrap_or("Error")),
        };
        error(status, code, message)
    }

    fn answers_partially(&self) -> bool {
        true
    }

    /// HTTP 200 with the first `accepted` events processed, the rest
    /// failed.
    fn partial(&self, accepted: usize, events: usize, _request: &Incoming<'_>) -> Response {
        processed(events, accepted.min(events))
    }

    fn connector(&self, _url: &str) -> SampleConnector {
        SampleConnector::of(
            &[("ad_account_id", "549755885175")],
            &[("access_token", "pina_test")],
        )
        .constant("event_name", "\"checkout\"", DataType::String)
        .mapping("properties.total", "custom_data.value", DataType::Number)
        .mapping(
            "properties.currency",
            "custom_data.currency",
            DataType::String,
        )
    }
}

/// `{"code", "message"}` at `status`.
fn error(status: StatusCode, code: i64, message: &str) -> Response {
    super::json(status, &json!({"code": code, "message": message}))
}

/// The 200 answer for `received` events of which the first `processed` were.
fn processed(received: usize, processed: usize) -> Response {
    let events: Vec<Value> = (0..received)
        .map(|i| {
            if i < processed {
                json!({"status": "processed", "error_message": null, "warning_message": null})
            } else {
                json!({"status": "failed", "error_message": "The event could not be processed.", "warning_message": null})
            }
        })
        .collect();
    super::json(
        StatusCode::OK,
        &json!({
            "num_events_received": received,
            "num_events_processed": processed,
            "events": events,
        }),
    )
}

/// Why Pinterest would fail `event`.
fn problem(event: &Value) -> Option<String> {
    let Some(members) = event.as_object() else {
        return Some("an event is an object".into());
    };
    if let Some(unknown) = members
        .keys()
        .find(|k| !EVENT_MEMBERS.contains(&k.as_str()))
    {
        return Some(format!("{unknown} is not a field of an event"));
    }
    let text = |field: &str| event[field].as_str().filter(|s| !s.is_empty());
    match text("event_name") {
        None => return Some("event_name is required".into()),
        Some(name) if !EVENT_NAMES.contains(&name) => {
            return Some(format!(
                "event_name {name} is not one of {}",
                EVENT_NAMES.join(", ")
            ));
        }
        Some(_) => {}
    }
    match text("action_source") {
        None => return Some("action_source is required".into()),
        Some(source) if !ACTION_SOURCES.contains(&source) => {
            return Some(format!(
                "action_source {source} is not one of {}",
                ACTION_SOURCES.join(", ")
            ));
        }
        Some(_) => {}
    }
    if !event["event_time"].is_i64() {
        return Some("event_time must be unix seconds".into());
    }
    if text("event_id").is_none() {
        return Some("event_id is required".into());
    }
    let empty = Map::new();
    let user = event["user_data"].as_object().unwrap_or(&empty);
    for field in HASHED {
        let Some(value) = user.get(field) else {
            continue;
        };
        let hashed_list = value
            .as_array()
            .is_some_and(|list| list.iter().all(|v| v.as_str().is_some_and(is_sha256_hex)));
        if !hashed_list {
            return Some(format!(
                "user_data.{field} must be a list of SHA-256 hashes"
            ));
        }
    }
    let has = |field: &str| user.get(field).is_some_and(|v| !v.is_null());
    if !(has("em") || has("hashed_maids") || (has("client_ip_address") && has("client_user_agent")))
    {
        return Some(
            "user_data needs em, hashed_maids, or client_ip_address with client_user_agent".into(),
        );
    }
    let value = &event["custom_data"]["value"];
    if !value.is_null() && !value.is_string() {
        return Some("custom_data.value must be a string".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::test_client::{json_of, post};
    use super::super::{FakePartner, Reply, unix_now};
    use super::*;

    const HASH: &str = "411e44ce1261728ffd2c0686e44e3fffe413c0e2c5adc498bc7da883d476b9c8";

    fn event() -> Value {
        json!({
            "event_name": "checkout",
            "action_source": "web",
            "event_time": unix_now() - 60,
            "event_id": "e1",
            "user_data": {"em": [HASH]},
            "custom_data": {"currency": "USD", "value": "72.39"}
        })
    }

    fn url(fake: &FakePartner) -> String {
        format!("{}/v5/ad_accounts/549755885175/events", fake.base_url())
    }

    const TOKEN: [(&str, &str); 1] = [("Authorization", "Bearer pina_test")];

    #[tokio::test]
    async fn accepts_and_reports_each_event() {
        let fake = FakePartner::start(&Pinterest).await;
        fake.script([Reply::Partial { accepted: 1 }]);
        let body = json!({"data": [event(), event()]}).to_string();
        let (status, _, text) = post(&url(&fake), &TOKEN, &body).await.expect("answered");
        let answer = json_of(&text);
        assert_eq!(status, 200);
        assert_eq!(
            (
                answer["num_events_received"].as_u64(),
                answer["num_events_processed"].as_u64()
            ),
            (Some(2), Some(1))
        );
        assert_eq!(answer["events"][1]["status"], "failed");
        let (_, _, text) = post(&url(&fake), &TOKEN, &body).await.expect("answered");
        assert_eq!(json_of(&text)["num_events_processed"], 2);
        assert_eq!(
            fake.requests()[0].headers["authorization"],
            "Bearer pina_test"
        );
    }

    #[tokio::test]
    async fn refuses_what_pinterest_refuses() {
        let fake = FakePartner::start(&Pinterest).await;
        let (status, _, text) = post(&url(&fake), &[], &json!({"data": [event()]}).to_string())
            .await
            .expect("answered");
        assert_eq!(
            (status, json_of(&text)),
            (401, json!({"code": 2, "message": "Authentication failed."}))
        );
        for body in [
            "nope".to_owned(),
            json!({"data": []}).to_string(),
            json!({"data": vec![event(); 1001]}).to_string(),
        ] {
            let (status, _, text) = post(&url(&fake), &TOKEN, &body).await.expect("answered");
            assert_eq!(
                (status, json_of(&text)["code"].as_i64()),
                (400, Some(4196)),
                "{body:.60}"
            );
        }
        let with = |edit: &dyn Fn(&mut Value)| {
            let mut bad = event();
            edit(&mut bad);
            json!({"data": [event(), bad]}).to_string()
        };
        for (body, reason) in [
            (
                with(&|e| e["event_name"] = json!("Purchase")),
                "event_name Purchase",
            ),
            (
                with(&|e| e["action_source"] = json!("website")),
                "action_source website",
            ),
            (
                with(&|e| drop(e.as_object_mut().map(|o| o.remove("event_id")))),
                "event_id is required",
            ),
            (
                with(&|e| e["user_data"]["em"] = json!(HASH)),
                "list of SHA-256",
            ),
            (
                with(&|e| e["user_data"]["ph"] = json!(["+1 650 555 1212"])),
                "list of SHA-256",
            ),
            (
                with(&|e| e["user_data"] = json!({"client_ip_address": "216.3.128.12"})),
                "user_data needs",
            ),
            (
                with(&|e| e["custom_data"]["value"] = json!(72.39)),
                "must be a string",
            ),
            (with(&|e| e["unknown"] = json!(1)), "unknown is not a field"),
        ] {
            let (status, _, text) = post(&url(&fake), &TOKEN, &body).await.expect("answered");
            let answer = json_of(&text);
            assert_eq!(status, 422, "{reason}");
            assert_eq!(
                answer["message"],
                "Not all events were successfully processed."
            );
            assert_eq!(answer["details"]["events"][0]["status"], "processed");
            let message = answer["details"]["events"][1]["error_message"]
                .as_str()
                .expect("a message");
            assert!(message.contains(reason), "{message} should say {reason}");
        }
    }

    #[tokio::test]
    async fn statuses_carry_the_documented_codes() {
        let fake = FakePartner::start(&Pinterest).await;
        fake.script([
            Reply::Status {
                status: 429,
                retry_after: Some(3),
            },
            Reply::Status {
                status: 503,
                retry_after: None,
            },
            Reply::Error {
                status: 403,
                code: "29".into(),
                message: "You are not permitted to access that resource.".into(),
            },
        ]);
        let body = json!({"data": [event()]}).to_string();
        let (status, retry_after, text) = post(&url(&fake), &TOKEN, &body).await.expect("answered");
        assert_eq!(
            (
                status,
                retry_after.as_deref(),
                json_of(&text)["code"].as_i64()
            ),
            (429, Some("3"), Some(8))
        );
        let (status, _, text) = post(&url(&fake), &TOKEN, &body).await.expect("answered");
        assert_eq!((status, json_of(&text)["code"].as_i64()), (503, Some(4197)));
        let (status, _, text) = post(&url(&fake), &TOKEN, &body).await.expect("answered");
        assert_eq!((status, json_of(&text)["code"].as_i64()), (403, Some(29)));
    }
}
