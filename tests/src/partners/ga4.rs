//! GA4 Measurement Protocol: `POST /mp/collect` and the validation server
//! `POST /debug/mp/collect`, identical but for the path. Production answers
//! 204 with no body to anything ("Measurement Protocol does not return HTTP
//! error codes, even if an event is malformed"; a wrong `api_secret` still
//! gets a 2xx); the validation server answers 200 with
//! `{"validationMessages": [{"fieldPath", "description",
//! "validationCode"}]}`, `[]` for a valid request, and checks neither
//! `api_secret` nor `firebase_app_id`. Documented limits: 25 events per
//! request, 25 params per event and 25 user properties, names of at most 40
//! characters matching `^[A-Za-z][A-Za-z0-9_]*$`, param values of at most
//! 100 characters.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};

use super::{Checked, FakeApi, Incoming, SampleConnector, plain};

/// At most 25 events per request.
const GA4_MAX_EVENTS: usize = 25;
/// At most 25 params per event and 25 user properties.
const GA4_MAX_PARAMS: usize = 25;
/// Event and param names are at most 40 characters.
const GA4_MAX_NAME: usize = 40;
/// Param values are at most 100 characters.
const GA4_MAX_VALUE: usize = 100;

/// The fake GA4.
#[derive(Debug, Clone, Copy)]
pub struct Ga4;

impl FakeApi for Ga4 {
    fn partner(&self) -> &'static str {
        "ga4"
    }

    fn routes(&self) -> &'static [&'static str] {
        &["/mp/collect", "/debug/mp/collect"]
    }

    /// Refuses nothing (see the module doc): missing `measurement_id` or
    /// `api_secret`, more than 25 events or a body that is not JSON are all
    /// answered like a valid request; the debug endpoint reports them.
    fn check(&self, request: &Incoming<'_>) -> Checked {
        Checked::pass(count_events(request.body))
    }

    fn accept(&self, request: &Incoming<'_>, _events: usize) -> Response {
        if request.path.starts_with("/debug/") {
            axum::Json(json!({ "validationMessages": ga4_validation(request.body) }))
                .into_response()
        } else {
            StatusCode::NO_CONTENT.into_response()
        }
    }

    /// GA4 has no error codes of its own: a status with its reason phrase.
    fn error(
        &self,
        status: StatusCode,
        _code: &str,
        message: &str,
        _request: &Incoming<'_>,
    ) -> Response {
        plain(status, message)
    }

    fn connector(&self, _url: &str) -> SampleConnector {
        SampleConnector::of(
            &[("measurement_id", "G-TEST1234")],
            &[("api_secret", "s3cret")],
        )
    }
}

/// GA4 for counting: only the `events` array's length matters.
#[derive(Deserialize)]
struct Ga4Body {
    events: Option<Vec<IgnoredAny>>,
}

/// The length of the body's `events` array (0 without one).
fn count_events(body: &[u8]) -> usize {
    serde_json::from_slice::<Ga4Body>(body)
        .ok()
        .and_then(|body| body.events)
        .map_or(0, |events| events.len())
}

/// What the GA4 validation server reports: one
/// `{"fieldPath", "description", "validationCode"}` per problem with the
/// documented limits, `[]` for a valid request. The descriptions are ours;
/// `api_secret` is not checked, like the real validation server.
fn ga4_validation(body: &[u8]) -> Vec<Value> {
    let message = |path: String, code: &str, description: String| json!({ "fieldPath": path, "description": description, "validationCode": code });
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(body) else {
        return vec![message(
            String::new(),
            "VALUE_INVALID",
            "Unable to parse Measurement Protocol JSON payload.".to_owned(),
        )];
    };
    let mut messages = Vec::new();
    if !request.contains_key("client_id") && !request.contains_key("app_instance_id") {
        messages.push(message(
            "client_id".to_owned(),
            "VALUE_REQUIRED",
            "Measurement requires a client_id or an app_instance_id.".to_owned(),
        ));
    }
    if let Some(properties) = request.get("user_properties").and_then(Value::as_object)
        && properties.len() > GA4_MAX_PARAMS
    {
        messages.push(message(
            "user_properties".to_owned(),
            "EXCEEDED_MAX_ENTITIES",
            format!("At most {GA4_MAX_PARAMS} user properties are allowed."),
        ));
    }
    let Some(events) = request.get("events").and_then(Value::as_array) else {
        messages.push(message(
            "events".to_owned(),
            "VALUE_REQUIRED",
            "Measurement requires an events array.".to_owned(),
        ));
        return messages;
    };
    if events.len() > GA4_MAX_EVENTS {
        messages.push(message(
            "events".to_owned(),
            "EXCEEDED_MAX_ENTITIES",
            format!("A request may have at most {GA4_MAX_EVENTS} events."),
        ));
    }
    for (index, event) in events.iter().enumerate() {
        let name = event
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !ga4_name(name) {
            messages.push(message(
                format!("events[{index}].name"),
                "NAME_INVALID",
                format!("Event name [{name}] is invalid."),
            ));
        }
        let Some(params) = event.get("params").and_then(Value::as_object) else {
            continue;
        };
        if params.len() > GA4_MAX_PARAMS {
            messages.push(message(
                format!("events[{index}].params"),
                "EXCEEDED_MAX_ENTITIES",
                format!("At most {GA4_MAX_PARAMS} params per event are allowed."),
            ));
        }
        for (param, value) in params {
            let path = format!("events[{index}].params.{param}");
            if !ga4_name(param) {
                messages.push(message(
                    path,
                    "NAME_INVALID",
                    format!("Param name [{param}] is invalid."),
                ));
            } else if value
                .as_str()
                .is_some_and(|text| text.chars().count() > GA4_MAX_VALUE)
            {
                messages.push(message(
                    path,
                    "VALUE_OUT_OF_BOUNDS",
                    format!("Param values may have at most {GA4_MAX_VALUE} characters."),
                ));
            }
        }
    }
    messages
}

/// GA4 names: at most 40 characters matching `^[A-Za-z][A-Za-z0-9_]*$`.
fn ga4_name(name: &str) -> bool {
    name.len() <= GA4_MAX_NAME
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::super::test_client::{json_of, post};
    use super::super::{FakePartner, Reply};
    use super::*;

    #[tokio::test]
    async fn scripted_500_then_accept() {
        let fake = FakePartner::start(&Ga4).await;
        fake.script([Reply::Status {
            status: 500,
            retry_after: Some(7),
        }]);
        let url = format!(
            "{}/mp/collect?measurement_id=G-1&api_secret=s",
            fake.base_url()
        );
        let body = r#"{"client_id":"c1","events":[{"name":"purchase"},{"name":"login"}]}"#;

        let (status, retry_after, text) = post(&url, &[], body).await.expect("answered");
        assert_eq!((status, retry_after.as_deref()), (500, Some("7")));
        assert_eq!(text, "Internal Server Error");
        let (status, _, text) = post(&url, &[], body).await.expect("answered");
        assert_eq!((status, text.as_str()), (204, ""));

        assert_eq!((fake.request_count(), fake.event_count()), (2, 4));
        let requests = fake.requests();
        assert_eq!(
            requests.iter().map(|r| r.reply_status).collect::<Vec<_>>(),
            [500, 204]
        );
        assert_eq!(requests[0].path, "/mp/collect");
        assert_eq!(requests[0].query["measurement_id"], "G-1");
        assert_eq!(requests[0].headers["content-type"], "application/json");
        assert_eq!(requests[0].body["client_id"], "c1");
        assert_eq!(requests[0].events, 2);
    }

    #[tokio::test]
    async fn ga4_answers_204_to_anything_and_the_debug_endpoint_reports() {
        let fake = FakePartner::start(&Ga4).await;
        let many = json!({"events": vec![json!({"name": "bad-name"}); 26]}).to_string();
        let collect = format!("{}/mp/collect", fake.base_url());
        assert_eq!(post(&collect, &[], &many).await.expect("answered").0, 204);
        assert_eq!(post(&collect, &[], "nope").await.expect("answered").0, 204);

        let debug = format!("{}/debug/mp/collect", fake.base_url());
        let (status, _, text) = post(&debug, &[], &many).await.expect("answered");
        assert_eq!(status, 200);
        let messages = json_of(&text)["validationMessages"].clone();
        let codes: Vec<&str> = messages
            .as_array()
            .expect("a list")
            .iter()
            .map(|m| m["validationCode"].as_str().expect("a code"))
            .collect();
        assert_eq!(
            &codes[..3],
            ["VALUE_REQUIRED", "EXCEEDED_MAX_ENTITIES", "NAME_INVALID"]
        );
        let valid = r#"{"client_id":"c","events":[{"name":"purchase","params":{"value":3}}]}"#;
        let (_, _, text) = post(&debug, &[], valid).await.expect("answered");
        assert_eq!(json_of(&text), json!({"validationMessages": []}));
    }
}
