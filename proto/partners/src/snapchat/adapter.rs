//! Snapchat Conversions API v3: `POST {base}/v3/{pixel_id}/events?access_token=`
//! with `{"data": [...], "test_event_code"?}`. Each event carries
//! `event_name`, `event_time` (unix seconds), `event_id`, `action_source`
//! (`WEB` unless the connector or the event says otherwise),
//! `event_source_url`, `user_data` and `custom_data`. In `user_data` the
//! hashed identifiers `em`, `ph`, `fn`, `ln`, `ge`, `ct`, `st`, `zp` and
//! `country` are lists (one value each here); `external_id`, the IP, the
//! user agent and Snap's click and cookie ids are plain strings.
//!
//! Every answer, success or not, is one `EventResponse`: `{"status":
//! "VALID" | "INVALID", "reason", "event"?, "errors": {"codes": [...],
//! "error_msgs": [...]}}`. A 2xx saying `INVALID` is a refused payload, like
//! a 400 (missing fields, unhashed or insufficient identifiers, a bad
//! timestamp, a purchase without price or currency). 401 and 403 are the
//! token; 429 and 5xx are retried. Snap does not document its error code
//! strings; whatever comes first in `errors.codes` is the partner code.

use eventconnectors_proto::v1::{ConnectorConfig, ErrorCategory};
use serde_json::Value;

use super::PARTNER;
use crate::adapter::{Adapter, Failure, PartnerRequest, PartnerResponse, Prepared, Retry, Verdict};
use crate::http::{
    data_requests, default_member, excerpt, query_value, secret, setting, status_failure,
    wrap_in_arrays,
};

/// Longest error code taken from an answer.
const MAX_CODE: usize = 64;
/// Longest message taken from an answer.
const MAX_MESSAGE: usize = 300;

/// `user_data` members Snap takes as lists.
const LISTED: [&str; 9] = ["em", "ph", "fn", "ln", "ge", "ct", "st", "zp", "country"];

/// The Snapchat adapter.
#[derive(Debug)]
pub struct Snapchat;

impl Adapter for Snapchat {
    fn prepare(&self, connector: &ConnectorConfig, event_id: &str, mut fields: Value) -> Prepared {
        let action_source = setting(connector, "action_source").unwrap_or("WEB");
        default_member(&mut fields, "action_source", action_source);
        wrap_in_arrays(&mut fields, "user_data", &LISTED);
        Prepared::new(event_id, &fields)
    }

    fn requests(
        &self,
        connector: &ConnectorConfig,
        events: &[Prepared],
        base_url: &str,
        _now: i64,
    ) -> Vec<PartnerRequest> {
        let url = format!(
            "{}/v3/{}/events?access_token={}",
            base_url.trim_end_matches('/'),
            query_value(setting(connector, "pixel_id").unwrap_or_default()),
            query_value(secret(connector, "access_token")),
        );
        data_requests(
            &url,
            &[],
            "",
            events,
            PARTNER.max_batch_size as usize,
            setting(connector, "test_event_code"),
        )
    }

    fn classify(&self, response: &PartnerResponse, _sent: usize) -> Verdict {
        let body = response.json();
        let invalid = body["status"].as_str() == Some("INVALID");
        if response.is_success() && !invalid {
            return Verdict::Delivered;
        }
        let status = response.status;
        // Snap documents no codes: one that is not a short word is not
        // trusted as a statistics group name.
        let code = body["errors"]["codes"][0].as_str().filter(|code| {
            (1..=MAX_CODE).contains(&code.len())
                && code
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        });
        let partner_code = match code {
            Some(code) => format!("{status}/{code}"),
            None => status.to_string(),
        };
        let message = message(&body).unwrap_or_else(|| excerpt(&response.body));
        if response.is_success() {
            // INVALID inside a 2xx: the payload was refused.
            return Verdict::Failed(Failure {
                category: ErrorCategory::PartnerError,
                partner_code,
                message,
                retry: Retry::Never,
            });
        }
        Verdict::Failed(status_failure(response, partner_code, message))
    }
}

/// `reason` and the `error_msgs`, as one line of at most [`MAX_MESSAGE`]
/// characters.
fn message(body: &Value) -> Option<String> {
    let mut parts: Vec<&str> = body["reason"].as_str().into_iter().collect();
    if let Some(messages) = body["errors"]["error_msgs"].as_array() {
        parts.extend(messages.iter().filter_map(Value::as_str));
    }
    (!parts.is_empty()).then(|| parts.join(": ").chars().take(MAX_MESSAGE).collect())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn connector() -> ConnectorConfig {
        ConnectorConfig {
            partner: "snapchat".into(),
            settings: [
                (
                    "pixel_id".to_owned(),
                    "5c8f2a40-1e2b-4f3a-9c1d-0a1b2c3d4e5f".to_owned(),
                ),
                ("test_event_code".to_owned(), "TEST42".to_owned()),
            ]
            .into(),
            secrets: [("access_token".to_owned(), "eyJ&x".to_owned())].into(),
            ..Default::default()
        }
    }

    fn response(status: u16, body: Value) -> PartnerResponse {
        PartnerResponse::with_json(status, &body)
    }

    #[test]
    fn builds_the_v3_request_with_listed_identifiers() {
        let connector = connector();
        let fields = json!({
            "event_name": "PURCHASE",
            "event_time": 1_764_435_600,
            "event_id": "evt-1",
            "event_source_url": "https://shop.example/checkout",
            "user_data": {
                "em": "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f",
                "ph": "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176",
                "external_id": "0d6e4079e36703ebd37c00722f5891d28b0e2811dc114b129215123adcce3605",
                "client_ip_address": "203.0.113.7",
                "client_user_agent": "Mozilla/5.0"
            },
            "custom_data": {"currency": "EUR", "value": 19.99}
        });
        let events: Vec<Prepared> = (0..1500)
            .map(|i| Snapchat.prepare(&connector, &format!("evt-{i}"), fields.clone()))
            .collect();
        let requests = Snapchat.requests(&connector, &events, "https://tr.snapchat.com/", 0);
        assert_eq!(
            requests.iter().map(|r| r.events.len()).collect::<Vec<_>>(),
            [1000, 500]
        );
        assert_eq!(
            requests[0].url,
            "https://tr.snapchat.com/v3/5c8f2a40-1e2b-4f3a-9c1d-0a1b2c3d4e5f/events?access_token=eyJ%26x"
        );
        assert!(requests[0].headers.is_empty());
        let body: Value = serde_json::from_slice(&requests[1].body).expect("json");
        assert_eq!(body["test_event_code"], "TEST42");
        assert_eq!(
            body["data"][0],
            json!({
                "event_name": "PURCHASE",
                "event_time": 1_764_435_600,
                "event_id": "evt-1",
                "event_source_url": "https://shop.example/checkout",
                "action_source": "WEB",
                "user_data": {
                    "em": ["62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"],
                    "ph": ["e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"],
                    "external_id": "0d6e4079e36703ebd37c00722f5891d28b0e2811dc114b129215123adcce3605",
                    "client_ip_address": "203.0.113.7",
                    "client_user_agent": "Mozilla/5.0"
                },
                "custom_data": {"currency": "EUR", "value": 19.99}
            })
        );
    }

    #[test]
    fn the_connector_or_the_event_sets_the_action_source() {
        let mut connector = connector();
        connector
            .settings
            .insert("action_source".into(), "MOBILE_APP".into());
        let prepared = Snapchat.prepare(&connector, "e", json!({"event_name": "APP_OPEN"}));
        assert!(prepared.json.contains(r#""action_source":"MOBILE_APP""#));
        let prepared = Snapchat.prepare(
            &connector,
            "e",
            json!({"event_name": "PURCHASE", "action_source": "OFFLINE"}),
        );
        assert!(prepared.json.contains(r#""action_source":"OFFLINE""#));
    }

    #[test]
    fn reads_every_documented_answer() {
        let valid =
            json!({"status": "VALID", "reason": "Events have been processed successfully."});
        assert_eq!(
            Snapchat.classify(&response(200, valid), 3),
            Verdict::Delivered
        );
        assert_eq!(
            Snapchat.classify(&response(200, json!({})), 3),
            Verdict::Delivered
        );

        let cases = [
            (
                200,
                json!({"status": "INVALID", "reason": "Events are invalid.", "errors": {"codes": ["INVALID_TIMESTAMP"], "error_msgs": ["event_time is out of range"]}}),
                ErrorCategory::PartnerError,
                "200/INVALID_TIMESTAMP",
                Retry::Never,
            ),
            (
                400,
                json!({"status": "INVALID", "reason": "Missing required field", "event": 0, "errors": {"codes": ["MISSING_REQUIRED_FIELD"], "error_msgs": ["custom_data.currency is required for PURCHASE"]}}),
                ErrorCategory::PartnerError,
                "400/MISSING_REQUIRED_FIELD",
                Retry::Never,
            ),
            (
                401,
                json!({"status": "INVALID", "reason": "Invalid access token"}),
                ErrorCategory::InvalidCredentials,
                "401",
                Retry::Never,
            ),
            (
                403,
                json!({"status": "INVALID", "reason": "Forbidden"}),
                ErrorCategory::InvalidCredentials,
                "403",
                Retry::Never,
            ),
            (
                429,
                json!({"status": "INVALID", "reason": "Too many requests"}),
                ErrorCategory::PartnerError,
                "429",
                Retry::Later(None),
            ),
            (
                503,
                json!("Service Unavailable"),
                ErrorCategory::PartnerError,
                "503",
                Retry::Later(None),
            ),
        ];
        for (status, body, category, code, retry) in cases {
            let Verdict::Failed(failure) = Snapchat.classify(&response(status, body), 3) else {
                panic!("{status} must fail");
            };
            assert_eq!(
                (
                    failure.category,
                    failure.partner_code.as_str(),
                    failure.retry
                ),
                (category, code, retry),
                "{status}"
            );
        }
        let Verdict::Failed(failure) = Snapchat.classify(
            &response(
                400,
                json!({"status": "INVALID", "reason": "Missing required field", "errors": {"codes": ["MISSING_REQUIRED_FIELD"], "error_msgs": ["custom_data.currency is required"]}}),
            ),
            1,
        ) else {
            panic!("400 fails");
        };
        assert_eq!(
            failure.message,
            "Missing required field: custom_data.currency is required"
        );

        // What is not a short code is left out of the partner code; long
        // messages are cut.
        let hostile = json!({"status": "INVALID", "reason": "x".repeat(10_000), "errors": {"codes": ["a b", "C"], "error_msgs": []}});
        let Verdict::Failed(failure) = Snapchat.classify(&response(400, hostile), 1) else {
            panic!("400 fails");
        };
        assert_eq!(failure.partner_code, "400");
        assert_eq!(failure.message.chars().count(), 300);
        let long = json!({"status": "INVALID", "errors": {"codes": ["A".repeat(65)]}});
        let Verdict::Failed(failure) = Snapchat.classify(&response(400, long), 1) else {
            panic!("400 fails");
        };
        assert_eq!(failure.partner_code, "400");
    }
}
