//! TikTok Events API v1.3: `POST /open_api/v1.3/event/track/` with the
//! header `Access-Token: <token>` (no `Bearer`: a prefix makes it 40105) and
//! `{"event_source", "event_source_id", "test_event_code"?, "data": [...]}`.
//! Errors come in the body, with HTTP 200: `{"code", "message",
//! "request_id"}`; success is code 0 with `"data": {}`. TikTok publishes no
//! batch limit for this endpoint; 50 is what the adapter sends at most (and
//! what the older `/pixel/batch` allowed).

use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Checked, FakeApi, Incoming, SampleConnector};

/// See the module doc: no documented limit; 50 is the adapter's.
const TIKTOK_MAX_EVENTS: usize = 50;

/// The fake TikTok Events API.
#[derive(Debug, Clone, Copy)]
pub struct TikTok;

impl FakeApi for TikTok {
    fn partner(&self) -> &'static str {
        "tiktok"
    }

    fn routes(&self) -> &'static [&'static str] {
        &["/open_api/v1.3/event/track/"]
    }

    fn check(&self, request: &Incoming<'_>) -> Checked {
        check_tiktok(request)
    }

    fn accept(&self, request: &Incoming<'_>, _events: usize) -> Response {
        tiktok_body(0, "OK", request.id)
    }

    /// TikTok's codes travel in the body; the status is what it is sent
    /// with (TikTok's own errors come with 200).
    fn error(
        &self,
        status: StatusCode,
        code: &str,
        message: &str,
        request: &Incoming<'_>,
    ) -> Response {
        let code: i64 = code.parse().expect("checked when scripted");
        let mut response = tiktok_body(code, message, request.id);
        *response.status_mut() = status;
        response
    }

    fn connector(&self, _url: &str) -> SampleConnector {
        SampleConnector::of(
            &[("pixel_code", "CPIX123")],
            &[("access_token", "tt-token")],
        )
    }
}

/// TikTok for validation, cheaply: the fields each event must have.
#[derive(Deserialize)]
struct TikTokBody {
    data: Option<Vec<TikTokEvent>>,
}

#[derive(Deserialize)]
struct TikTokEvent {
    event: Option<Value>,
    event_time: Option<Value>,
    event_id: Option<Value>,
}

/// TikTok's checks, refused with HTTP 200 and a body code: no
/// `Access-Token` header, an empty one or one with a `Bearer` prefix ->
/// 40105; a body that is not JSON or has no `data` array, more than 50
/// events, or an event whose `event` is not a string, `event_time` not an
/// integer or `event_id` (when present) not a string -> 40002, worded like
/// TikTok's "Invalid value for event_id: not a valid string.".
fn check_tiktok(request: &Incoming<'_>) -> Checked {
    let (body, id) = (request.body, request.id);
    let parsed = serde_json::from_slice::<TikTokBody>(body)
        .ok()
        .and_then(|body| body.data);
    let events = parsed.as_ref().map_or(0, Vec::len);
    let refuse = |code: i64, message: &str| Checked::refuse(events, tiktok_body(code, message, id));
    let token = request.header("access-token").unwrap_or_default();
    if token.is_empty() || token.to_ascii_lowercase().starts_with("bearer ") {
        return refuse(40105, "Access token is incorrect or has been revoked.");
    }
    let Some(data) = parsed else {
        return refuse(40002, "Invalid value for data: not a valid list.");
    };
    if data.len() > TIKTOK_MAX_EVENTS {
        return refuse(
            40002,
            &format!("Invalid value for data: longer than {TIKTOK_MAX_EVENTS}."),
        );
    }
    let invalid = data.iter().find_map(|event| {
        if !event.event.as_ref().is_some_and(Value::is_string) {
            Some("Invalid value for event: not a valid string.")
        } else if !event.event_time.as_ref().is_some_and(Value::is_i64) {
            Some("Invalid value for event_time: not a valid integer.")
        } else if event.event_id.as_ref().is_some_and(|id| !id.is_string()) {
            Some("Invalid value for event_id: not a valid string.")
        } else {
            None
        }
    });
    if let Some(message) = invalid {
        return refuse(40002, message);
    }
    Checked::pass(events)
}

/// TikTok's answer, always HTTP 200: `{"code", "message", "request_id"}`,
/// with `"data": {}` on success.
fn tiktok_body(code: i64, message: &str, id: u64) -> Response {
    let mut body = json!({
        "code": code,
        "message": message,
        "request_id": format!("fake{id:016}"),
    });
    if code == 0 {
        body["data"] = json!({});
    }
    super::json(StatusCode::OK, &body)
}

#[cfg(test)]
mod tests {
    use super::super::test_client::{json_of, post};
    use super::super::{FakePartner, Reply, unix_now};
    use super::*;

    fn tiktok_url(fake: &FakePartner) -> String {
        format!("{}/open_api/v1.3/event/track/", fake.base_url())
    }

    fn tiktok_request(events: usize) -> String {
        let event = json!({"event": "CompletePayment", "event_time": unix_now(), "event_id": "e1"});
        json!({"event_source": "web", "event_source_id": "PIX", "data": vec![event; events]})
            .to_string()
    }

    #[tokio::test]
    async fn tiktok_answers_codes_in_a_200() {
        let fake = FakePartner::start(&TikTok).await;
        fake.script([Reply::Error {
            status: 200,
            code: "40100".into(),
            message: "Too many requests".into(),
        }]);
        let token = [("Access-Token", "tok")];
        let (status, _, text) = post(&tiktok_url(&fake), &token, &tiktok_request(2))
            .await
            .expect("answered");
        let answer = json_of(&text);
        assert_eq!((status, answer["code"].as_i64()), (200, Some(40100)));
        assert_eq!(answer["message"], "Too many requests");
        let (_, _, text) = post(&tiktok_url(&fake), &token, &tiktok_request(2))
            .await
            .expect("answered");
        let answer = json_of(&text);
        assert_eq!(
            (
                answer["code"].as_i64(),
                answer["message"].as_str(),
                answer["data"].clone()
            ),
            (Some(0), Some("OK"), json!({}))
        );
        assert!(answer["request_id"].is_string());

        for (headers, body, code) in [
            (&[][..], tiktok_request(1), 40105),
            (
                &[("Access-Token", "Bearer tok")][..],
                tiktok_request(1),
                40105,
            ),
            (&token[..], tiktok_request(51), 40002),
            (
                &token[..],
                r#"{"data":[{"event":"Lead"}]}"#.to_owned(),
                40002,
            ),
        ] {
            let (status, _, text) = post(&tiktok_url(&fake), headers, &body)
                .await
                .expect("answered");
            assert_eq!(
                (status, json_of(&text)["code"].as_i64()),
                (200, Some(code)),
                "{body:.60}"
            );
        }
        assert_eq!(
            (fake.request_count(), fake.event_count()),
            (6, 4 + 1 + 1 + 51 + 1)
        );
    }
}
