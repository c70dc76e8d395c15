//! Meta Conversions API: `POST /{version}/{pixel}/events` with the token in
//! `access_token` (query, or a body field) and `{"data": [...]}` of up to
//! 1,000 events. A success is `{"events_received", "messages": [],
//! "fbtrace_id"}`; an error is a Graph error `{"error": {"message", "type":
//! "OAuthException", "code", "error_subcode"?, "fbtrace_id"}}`, an expired
//! token being code 190 over HTTP 400. If any `event_time` is more than 7
//! days old (62 for `physical_store`), the whole request errors.

use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};

use super::{Checked, DAY_SECONDS, FakeApi, Incoming, SampleConnector, unix_now};

/// Up to 1,000 events in `data`.
const META_MAX_EVENTS: usize = 1000;

/// The fake Meta Conversions API.
#[derive(Debug, Clone, Copy)]
pub struct MetaCapi;

impl FakeApi for MetaCapi {
    fn partner(&self) -> &'static str {
        "meta_capi"
    }

    fn routes(&self) -> &'static [&'static str] {
        &["/{version}/{pixel}/events"]
    }

    fn check(&self, request: &Incoming<'_>) -> Checked {
        check_meta(request)
    }

    fn accept(&self, request: &Incoming<'_>, events: usize) -> Response {
        meta_received(events, request.id)
    }

    fn error(
        &self,
        status: StatusCode,
        code: &str,
        message: &str,
        request: &Incoming<'_>,
    ) -> Response {
        let code: i64 = code.parse().expect("checked when scripted");
        // An expired token comes with its subcode, as Meta sends it.
        let subcode = (code == 190).then_some(463);
        graph_error(status, code, subcode, message, request.id)
    }

    /// A Graph error whose code fits the status (400 -> 100, 401 -> 190,
    /// 403 -> 10, 429 -> 4, 500 -> 1, 502-504 -> 2); other statuses as
    /// plain text.
    fn status(&self, status: StatusCode, request: &Incoming<'_>) -> Response {
        match meta_status_error(status) {
            Some((code, message)) => graph_error(status, code, None, message, request.id),
            None => super::plain(status, status.canonical_reason().unwrap_or("Error")),
        }
    }

    fn answers_partially(&self) -> bool {
        true
    }

    /// HTTP 200 reporting only `accepted` as `events_received`.
    fn partial(&self, accepted: usize, _events: usize, request: &Incoming<'_>) -> Response {
        meta_received(accepted, request.id)
    }

    fn connector(&self, _url: &str) -> SampleConnector {
        SampleConnector::of(
            &[("pixel_id", "1234567890")],
            &[("access_token", "EAAB-test")],
        )
    }
}

/// Meta for validation, cheaply: the fields each event must have.
#[derive(Deserialize)]
struct MetaBody {
    data: Option<Vec<MetaEvent>>,
    /// The token may also travel in the body instead of the query.
    access_token: Option<String>,
}

#[derive(Deserialize)]
struct MetaEvent {
    event_name: Option<IgnoredAny>,
    event_time: Option<Value>,
    action_source: Option<Value>,
    user_data: Option<IgnoredAny>,
}

impl MetaEvent {
    /// Why Meta would refuse the request over this event (`data[index]`).
    fn problem(&self, index: usize, now: i64) -> Option<String> {
        let missing = [
            ("event_name", self.event_name.is_none()),
            ("event_time", self.event_time.is_none()),
            ("action_source", self.action_source.is_none()),
            ("user_data", self.user_data.is_none()),
        ];
        if let Some((field, _)) = missing.iter().find(|(_, missing)| *missing) {
            return Some(format!(
                "(#100) The parameter {field} is required (data[{index}])"
            ));
        }
        let Some(time) = self.event_time.as_ref().and_then(Value::as_i64) else {
            return Some(format!(
                "(#100) Param event_time must be an integer unix timestamp in seconds (data[{index}])"
            ));
        };
        // "If any event_time is more than 7 days old, the entire request
        // errors"; physical_store events may be 62 days old.
        let physical_store =
            self.action_source.as_ref().and_then(Value::as_str) == Some("physical_store");
        let max_days = if physical_store { 62 } else { 7 };
        (now - time > max_days * DAY_SECONDS).then(|| {
            format!(
                "(#100) The parameter event_time is more than {max_days} days in the past (data[{index}])"
            )
        })
    }
}

/// Meta's checks, each refused with HTTP 400 and a Graph error: no (or an
/// empty) access token -> code 190; a body that is not JSON, without a
/// `data` array of event objects, with more than 1,000 events, or with an
/// event missing `event_name`/`event_time`/`action_source`/`user_data` or
/// older than 7 days (62 for `physical_store`) -> code 100, refusing the
/// whole request. Meta's documentation leaves open whether one bad event
/// rejects the batch; refusing it whole is the stricter choice.
fn check_meta(request: &Incoming<'_>) -> Checked {
    let (query, body, id) = (request.query, request.body, request.id);
    let parsed = serde_json::from_slice::<MetaBody>(body);
    let events = parsed
        .as_ref()
        .ok()
        .and_then(|body| body.data.as_ref())
        .map_or(0, Vec::len);
    let refuse = |code: i64, message: &str| {
        Checked::refuse(
            events,
            graph_error(StatusCode::BAD_REQUEST, code, None, message, id),
        )
    };
    let token = query
        .get("access_token")
        .or_else(|| parsed.as_ref().ok()?.access_token.as_ref());
    if token.is_none_or(String::is_empty) {
        // A bad token is 190 (seen over HTTP 400); a missing one is
        // treated as a token that cannot be parsed.
        return refuse(
            190,
            "Invalid OAuth access token - Cannot parse access token",
        );
    }
    let request = match parsed {
        Ok(request) => request,
        Err(_) if serde_json::from_slice::<IgnoredAny>(body).is_err() => {
            return refuse(100, "(#100) The request body is not valid JSON");
        }
        Err(_) => return refuse(100, "(#100) Param data must be an array of event objects"),
    };
    let Some(data) = request.data else {
        return refuse(100, "(#100) The parameter data is required");
    };
    if data.len() > META_MAX_EVENTS {
        return refuse(
            100,
            &format!(
                "(#100) Param data must be an array of at most {META_MAX_EVENTS} events, got {}",
                data.len()
            ),
        );
    }
    let now = unix_now();
    if let Some(problem) = data
        .iter()
        .enumerate()
        .find_map(|(index, event)| event.problem(index, now))
    {
        return refuse(100, &problem);
    }
    Checked::pass(events)
}

/// The Graph error code and message fitting an error status, from Meta's
/// documented codes (its status for each code is not documented, so this
/// pairs them by meaning).
fn meta_status_error(status: StatusCode) -> Option<(i64, &'static str)> {
    let error = match status.as_u16() {
        401 => (190, "Error validating access token"),
        403 => (
            10,
            "(#10) Application does not have permission for this action",
        ),
        429 => (4, "(#4) Application request limit reached"),
        500 => (1, "An unknown error occurred"),
        502..=504 => (
            2,
            "An unexpected error has occurred. Please retry your request later.",
        ),
        501 | 505..=599 => (1, "An unknown error occurred"),
        400..=499 => (100, "(#100) Invalid parameter"),
        _ => return None,
    };
    Some(error)
}

/// A Graph error: `{"error": {"message", "type", "code", "error_subcode"?,
/// "fbtrace_id"}}`.
fn graph_error(
    status: StatusCode,
    code: i64,
    subcode: Option<i64>,
    message: &str,
    id: u64,
) -> Response {
    let mut error = json!({
        "message": message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": fbtrace_id(id),
    });
    if let Some(subcode) = subcode {
        error["error_subcode"] = subcode.into();
    }
    super::json(status, &json!({ "error": error }))
}

/// Meta's success: `{"events_received", "messages": [], "fbtrace_id"}`.
fn meta_received(received: usize, id: u64) -> Response {
    super::json(
        StatusCode::OK,
        &json!({
            "events_received": received,
            "messages": [],
            "fbtrace_id": fbtrace_id(id),
        }),
    )
}

fn fbtrace_id(id: u64) -> String {
    format!("AFakeTrace{id:010}")
}

#[cfg(test)]
mod tests {
    use super::super::test_client::{json_of, post};
    use super::super::{FakePartner, Reply};
    use super::*;

    fn meta_url(fake: &FakePartner) -> String {
        format!("{}/v21.0/123/events?access_token=EAAB", fake.base_url())
    }

    fn meta_event(name: &str) -> Value {
        json!({
            "event_name": name,
            "event_time": unix_now() - 60,
            "action_source": "website",
            "user_data": {"em": ["62a14e44"]},
        })
    }

    #[tokio::test]
    async fn meta_refuses_a_bad_event_before_the_script_and_reports_partial() {
        let fake = FakePartner::start(&MetaCapi).await;
        fake.script([Reply::Partial { accepted: 1 }]);
        let mut bad = meta_event("Purchase");
        bad.as_object_mut().expect("object").remove("user_data");
        let body = json!({"data": [meta_event("Lead"), bad]}).to_string();

        let (status, _, text) = post(&meta_url(&fake), &[], &body).await.expect("answered");
        assert_eq!(status, 400);
        let error = &json_of(&text)["error"];
        assert_eq!(
            (error["code"].as_i64(), error["type"].as_str()),
            (Some(100), Some("OAuthException"))
        );
        assert!(
            error["message"]
                .as_str()
                .expect("message")
                .contains("user_data")
        );
        assert!(
            error["message"]
                .as_str()
                .expect("message")
                .contains("data[1]")
        );
        assert!(error["fbtrace_id"].is_string());

        // The refusal did not use up the scripted partial answer.
        let body =
            json!({"data": [meta_event("Lead"), meta_event("Purchase")], "test_event_code": "T1"});
        let (status, _, text) = post(&meta_url(&fake), &[], &body.to_string())
            .await
            .expect("answered");
        assert_eq!(status, 200);
        let answer = json_of(&text);
        assert_eq!(
            (
                answer["events_received"].as_u64(),
                answer["messages"].clone()
            ),
            (Some(1), json!([]))
        );
        let (_, _, text) = post(&meta_url(&fake), &[], &body.to_string())
            .await
            .expect("answered");
        assert_eq!(json_of(&text)["events_received"], 2);
        assert_eq!(fake.requests()[1].body["test_event_code"], "T1");
    }

    #[tokio::test]
    async fn meta_checks_token_size_age_and_maps_statuses() {
        let fake = FakePartner::start(&MetaCapi).await;
        let one = json!({"data": [meta_event("Lead")]}).to_string();
        let no_token = format!("{}/v21.0/123/events", fake.base_url());
        let (status, _, text) = post(&no_token, &[], &one).await.expect("answered");
        assert_eq!(
            (status, json_of(&text)["error"]["code"].as_i64()),
            (400, Some(190))
        );

        let too_many = json!({"data": vec![meta_event("Lead"); 1001]}).to_string();
        let old = json!({"data": [{"event_name": "Lead", "event_time": unix_now() - 8 * DAY_SECONDS, "action_source": "website", "user_data": {}}]}).to_string();
        for body in [
            too_many.as_str(),
            old.as_str(),
            "{",
            r#"{"data": "x"}"#,
            "{}",
        ] {
            let (status, _, text) = post(&meta_url(&fake), &[], body).await.expect("answered");
            assert_eq!(
                (status, json_of(&text)["error"]["code"].as_i64()),
                (400, Some(100)),
                "{body:.40}"
            );
        }

        fake.script([
            Reply::Status {
                status: 429,
                retry_after: None,
            },
            Reply::Error {
                status: 400,
                code: "190".into(),
                message: "Session has expired".into(),
            },
        ]);
        let (status, _, text) = post(&meta_url(&fake), &[], &one).await.expect("answered");
        assert_eq!(
            (status, json_of(&text)["error"]["code"].as_i64()),
            (429, Some(4))
        );
        let (status, _, text) = post(&meta_url(&fake), &[], &one).await.expect("answered");
        let error = &json_of(&text)["error"];
        assert_eq!(
            (
                status,
                error["code"].as_i64(),
                error["error_subcode"].as_i64()
            ),
            (400, Some(190), Some(463))
        );
    }
}
