//! Snapchat Conversions API v3: `POST /v3/{pixel_id}/events?access_token=`
//! and the test endpoint `POST /v3/{pixel_id}/events/validate`, with
//! `{"data": [...], "test_event_code"?}`. Every answer is one
//! `EventResponse` `{"status": "VALID" | "INVALID", "reason", "event"?,
//! "errors": {"codes": [...], "error_msgs": [...]}}`: `VALID` with "Events
//! have been processed successfully." on success (the test endpoint adds
//! `"test_event": true`), `INVALID` with HTTP 400 for an event missing a
//! required field (`event_name`, `event_time`, `action_source`, and
//! `event_source_url` for `WEB`), with identifiers that are not SHA-256
//! (`em`, `ph`, `fn`, `ln`, `ge`, `ct`, `st`, `zp`, `country`), with too
//! little to match on (none of `em`, `ph`, IP with user agent, `madid`), a
//! timestamp that is not a number or more than 37 days old, or a `PURCHASE`
//! without `currency` and `value`; HTTP 401 "Invalid access token" without
//! a token. Snap documents neither its error code strings nor a batch limit:
//! the codes here are ours (`MISSING_REQUIRED_FIELD`, `UNHASHED_PII`,
//! `INSUFFICIENT_PII`, `INVALID_TIMESTAMP`, `MISSING_PURCHASE_VALUE`,
//! `INVALID_ACCESS_TOKEN`, `TOO_MANY_EVENTS`), and more than 2,000 events
//! (what RudderStack sends at most) is refused.

use axum::http::StatusCode;
use axum::response::Response;
use eventconnectors_proto::v1::DataType;
use serde_json::{Map, Value, json};

use super::{Checked, DAY_SECONDS, FakeApi, Incoming, SampleConnector, is_sha256_hex, unix_now};

/// Events in one request, at most (see the module doc).
const MAX_EVENTS: usize = 2000;
/// Events may be at most 37 days old.
const MAX_AGE_DAYS: i64 = 37;
/// `user_data` members that must be SHA-256 digests.
const HASHED: [&str; 9] = ["em", "ph", "fn", "ln", "ge", "ct", "st", "zp", "country"];
/// Unix times above this are milliseconds (Snap takes both).
const MILLIS_ABOVE: i64 = 100_000_000_000;

/// The fake Snapchat Conversions API.
#[derive(Debug, Clone, Copy)]
pub struct Snapchat;

impl FakeApi for Snapchat {
    fn partner(&self) -> &'static str {
        "snapchat"
    }

    fn routes(&self) -> &'static [&'static str] {
        &["/v3/{pixel}/events", "/v3/{pixel}/events/validate"]
    }

    fn check(&self, request: &Incoming<'_>) -> Checked {
        let parsed: Option<Value> = serde_json::from_slice(request.body).ok();
        let data = parsed
            .as_ref()
            .and_then(|body| body["data"].as_array())
            .cloned()
            .unwrap_or_default();
        let events = data.len();
        let refuse = |status, code: &str, message: &str, event: Option<usize>| {
            Checked::refuse(events, invalid(status, code, message, event))
        };
        if request
            .query
            .get("access_token")
            .is_none_or(|token| token.trim().is_empty())
        {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "INVALID_ACCESS_TOKEN",
                "Invalid access token",
                None,
            );
        }
        if parsed.is_none() || data.is_empty() {
            return refuse(
                StatusCode::BAD_REQUEST,
                "MISSING_REQUIRED_FIELD",
                "data must be a non-empty list of events",
                None,
            );
        }
        if events > MAX_EVENTS {
            return refuse(
                StatusCode::BAD_REQUEST,
                "TOO_MANY_EVENTS",
                &format!("at most {MAX_EVENTS} events per request"),
                None,
            );
        }
        let now = unix_now();
        for (index, event) in data.iter().enumerate() {
            if let Err((code, message)) = check_event(event, now) {
                return refuse(StatusCode::BAD_REQUEST, code, &message, Some(index));
            }
        }
        Checked::pass(events)
    }

    fn accept(&self, request: &Incoming<'_>, _events: usize) -> Response {
        let mut body = json!({
            "status": "VALID",
            "reason": "Events have been processed successfully.",
        });
        if request.path.ends_with("/validate") {
            body["test_event"] = json!(true);
        }
        super::json(StatusCode::OK, &body)
    }

    fn error(
        &self,
        status: StatusCode,
        code: &str,
        message: &str,
        _request: &Incoming<'_>,
    ) -> Response {
        invalid(status, code, message, None)
    }

    /// Snap's codes are words.
    fn is_code(&self, code: &str) -> bool {
        !code.is_empty() && code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
    }

    /// `INVALID` with the reason phrase, at any status.
    fn status(&self, status: StatusCode, _request: &Incoming<'_>) -> Response {
        let reason = status.canonical_reason().unwrap_or("Error");
        super::json(status, &json!({"status": "INVALID", "reason": reason}))
    }

    fn connector(&self, _url: &str) -> SampleConnector {
        SampleConnector::of(
            &[("pixel_id", "5c8f2a40-1e2b-4f3a-9c1d-0a1b2c3d4e5f")],
            &[("access_token", "snap-token")],
        )
        .constant("event_name", "\"PURCHASE\"", DataType::String)
        .mapping("properties.total", "custom_data.value", DataType::Number)
        .mapping(
            "properties.currency",
            "custom_data.currency",
            DataType::String,
        )
    }
}

/// An `INVALID` EventResponse.
fn invalid(status: StatusCode, code: &str, message: &str, event: Option<usize>) -> Response {
    let mut body = json!({
        "status": "INVALID",
        "reason": message,
        "errors": {"codes": [code], "error_msgs": [message]},
    });
    if let Some(index) = event {
        body["event"] = json!(index);
    }
    super::json(status, &body)
}

/// Why Snap would refuse `event`: its code and message.
fn check_event(event: &Value, now: i64) -> Result<(), (&'static str, String)> {
    let missing = |field: &str| ("MISSING_REQUIRED_FIELD", format!("{field} is required"));
    let text = |field: &str| event[field].as_str().filter(|s| !s.is_empty());
    let name = text("event_name").ok_or_else(|| missing("event_name"))?;
    let action_source = text("action_source").ok_or_else(|| missing("action_source"))?;
    if action_source.eq_ignore_ascii_case("WEB") && text("event_source_url").is_none() {
        return Err(missing("event_source_url"));
    }
    let time = event["event_time"].as_i64().ok_or((
        "INVALID_TIMESTAMP",
        "event_time must be unix time".to_owned(),
    ))?;
    let seconds = if time > MILLIS_ABOVE {
        time / 1000
    } else {
        time
    };
    if now - seconds > MAX_AGE_DAYS * DAY_SECONDS {
        return Err((
            "INVALID_TIMESTAMP",
            format!("event_time is more than {MAX_AGE_DAYS} days old"),
        ));
    }
    let empty = Map::new();
    let user = event["user_data"].as_object().unwrap_or(&empty);
    for field in HASHED {
        let values = match &user.get(field) {
            Some(Value::Array(values)) => values.clone(),
            Some(value) => vec![(*value).clone()],
            None => continue,
        };
        if !values.iter().all(|v| v.as_str().is_some_and(is_sha256_hex)) {
            return Err((
                "UNHASHED_PII",
                format!("user_data.{field} must be SHA-256 hashed"),
            ));
        }
    }
    let has = |field: &str| user.get(field).is_some_and(|v| !v.is_null());
    let matchable = has("em")
        || has("ph")
        || has("madid")
        || (has("client_ip_address") && has("client_user_agent"));
    if !matchable {
        return Err((
            "INSUFFICIENT_PII",
            "user_data needs em, ph, madid, or client_ip_address with client_user_agent".to_owned(),
        ));
    }
    if name.eq_ignore_ascii_case("PURCHASE")
        && (event["custom_data"]["currency"].is_null() || event["custom_data"]["value"].is_null())
    {
        return Err((
            "MISSING_PURCHASE_VALUE",
            "PURCHASE needs custom_data.currency and custom_data.value".to_owned(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_client::{json_of, post};
    use super::super::{FakePartner, Reply};
    use super::*;

    const HASH: &str = "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f";

    fn event() -> Value {
        json!({
            "event_name": "PURCHASE",
            "event_time": unix_now() - 60,
            "event_id": "e1",
            "action_source": "WEB",
            "event_source_url": "https://shop.example/checkout",
            "user_data": {"em": [HASH], "client_ip_address": "203.0.113.7", "client_user_agent": "Mozilla/5.0"},
            "custom_data": {"currency": "EUR", "value": 19.99}
        })
    }

    fn url(fake: &FakePartner, path: &str) -> String {
        format!("{}/v3/PIXEL{path}?access_token=t", fake.base_url())
    }

    #[tokio::test]
    async fn accepts_valid_events_on_both_endpoints() {
        let fake = FakePartner::start(&Snapchat).await;
        let body = json!({"data": [event(), event()]}).to_string();
        let (status, _, text) = post(&url(&fake, "/events"), &[], &body)
            .await
            .expect("answered");
        assert_eq!(status, 200);
        assert_eq!(
            json_of(&text),
            json!({"status": "VALID", "reason": "Events have been processed successfully."})
        );
        let (status, _, text) = post(&url(&fake, "/events/validate"), &[], &body)
            .await
            .expect("answered");
        assert_eq!(
            (status, json_of(&text)["test_event"].as_bool()),
            (200, Some(true))
        );
        assert_eq!(fake.event_count(), 4);
    }

    #[tokio::test]
    async fn refuses_what_snap_refuses() {
        let fake = FakePartner::start(&Snapchat).await;
        let with = |edit: &dyn Fn(&mut Value)| {
            let mut event = event();
            edit(&mut event);
            json!({"data": [event]}).to_string()
        };
        let cases = [
            (
                with(&|e| drop(e.as_object_mut().map(|o| o.remove("event_name")))),
                "MISSING_REQUIRED_FIELD",
            ),
            (
                with(&|e| drop(e.as_object_mut().map(|o| o.remove("event_source_url")))),
                "MISSING_REQUIRED_FIELD",
            ),
            (
                with(&|e| e["user_data"]["em"] = json!(["jo@example.com"])),
                "UNHASHED_PII",
            ),
            (
                with(&|e| e["user_data"] = json!({"client_ip_address": "203.0.113.7"})),
                "INSUFFICIENT_PII",
            ),
            (
                with(&|e| e["event_time"] = json!(unix_now() - 40 * DAY_SECONDS)),
                "INVALID_TIMESTAMP",
            ),
            (
                with(&|e| e["custom_data"] = json!({"currency": "EUR"})),
                "MISSING_PURCHASE_VALUE",
            ),
            (
                json!({"data": vec![event(); 2001]}).to_string(),
                "TOO_MANY_EVENTS",
            ),
        ];
        for (body, code) in cases {
            let (status, _, text) = post(&url(&fake, "/events"), &[], &body)
                .await
                .expect("answered");
            let answer = json_of(&text);
            assert_eq!(
                (
                    status,
                    answer["status"].as_str(),
                    answer["errors"]["codes"][0].as_str()
                ),
                (400, Some("INVALID"), Some(code)),
                "{body:.80}"
            );
        }
        let no_token = format!("{}/v3/PIXEL/events", fake.base_url());
        let (status, _, text) = post(&no_token, &[], &with(&|_| {}))
            .await
            .expect("answered");
        assert_eq!(
            (status, json_of(&text)["reason"].as_str()),
            (401, Some("Invalid access token"))
        );
        // Millisecond timestamps are Snap's too.
        let millis = with(&|e| e["event_time"] = json!((unix_now() - 60) * 1000));
        assert_eq!(
            post(&url(&fake, "/events"), &[], &millis)
                .await
                .expect("answered")
                .0,
            200
        );
    }

    #[tokio::test]
    async fn scripted_errors_are_event_responses() {
        let fake = FakePartner::start(&Snapchat).await;
        fake.script([
            Reply::Error {
                status: 400,
                code: "INVALID_TIMESTAMP".into(),
                message: "event_time is out of range".into(),
            },
            Reply::Status {
                status: 503,
                retry_after: Some(2),
            },
        ]);
        let body = json!({"data": [event()]}).to_string();
        let (status, _, text) = post(&url(&fake, "/events"), &[], &body)
            .await
            .expect("answered");
        assert_eq!(status, 400);
        assert_eq!(
            json_of(&text),
            json!({"status": "INVALID", "reason": "event_time is out of range", "errors": {"codes": ["INVALID_TIMESTAMP"], "error_msgs": ["event_time is out of range"]}})
        );
        let (status, retry_after, text) = post(&url(&fake, "/events"), &[], &body)
            .await
            .expect("answered");
        assert_eq!((status, retry_after.as_deref()), (503, Some("2")));
        assert_eq!(json_of(&text)["status"], "INVALID");
    }
}
