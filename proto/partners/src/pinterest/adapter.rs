//! Pinterest Conversions API: `POST {base}/v5/ad_accounts/{ad_account_id}/events`
//! (`?test=true` in test mode) with `Authorization: Bearer <conversion
//! token>` and `{"data": [...]}` of 1 to 1,000 events. Each event carries
//! `event_name`, `action_source` (`web` unless the connector or the event
//! says otherwise), `event_time` (unix seconds), `event_id`, `user_data`
//! and `custom_data`. In `user_data` the hashed identifiers (`em`, `ph`,
//! `fn`, `ln`, `ge`, `ct`, `st`, `zp`, `country`, `external_id`) are lists
//! (one value each here); `custom_data.value` is a decimal string.
//!
//! A 200 is `{"num_events_received", "num_events_processed", "events":
//! [{"status": "processed" | "failed", "error_message"?,
//! "warning_message"?}]}`: fewer processed than sent means the rest failed.
//! Errors are `{"code", "message"}`: 400 `4196` (invalid request), 401 `2`
//! (authentication failed) and 403 `29` (not permitted) are the token's or
//! the payload's and are not retried; 422 ("not all events were
//! successfully processed", with `details`) fails the request's events;
//! 429 `8` (rate limit: 5,000 calls a minute per ad account) and 503 `4197`
//! (endpoint ramped down) are retried, honouring Retry-After.

use eventconnectors_proto::v1::{ConnectorConfig, ErrorCategory};
use serde_json::Value;

use super::PARTNER;
use crate::adapter::{Adapter, Failure, PartnerRequest, PartnerResponse, Prepared, Retry, Verdict};
use crate::http::{
    data_requests, default_member, excerpt, query_value, secret, setting, status_failure,
    wrap_in_arrays,
};

/// `user_data` members Pinterest takes as lists.
const LISTED: [&str; 10] = [
    "em",
    "ph",
    "fn",
    "ln",
    "ge",
    "ct",
    "st",
    "zp",
    "country",
    "external_id",
];

/// Longest first error message quoted for a partly processed request.
const MAX_QUOTED: usize = 200;

/// The Pinterest adapter.
#[derive(Debug)]
pub struct Pinterest;

impl Adapter for Pinterest {
    fn prepare(&self, connector: &ConnectorConfig, event_id: &str, mut fields: Value) -> Prepared {
        let action_source = setting(connector, "action_source").unwrap_or("web");
        default_member(&mut fields, "action_source", action_source);
        wrap_in_arrays(&mut fields, "user_data", &LISTED);
        // "Accepted as a string", parsed into a double by Pinterest.
        if let Some(value) = fields.pointer_mut("/custom_data/value")
            && value.is_number()
        {
            *value = Value::String(value.to_string());
        }
        Prepared::new(event_id, &fields)
    }

    fn requests(
        &self,
        connector: &ConnectorConfig,
        events: &[Prepared],
        base_url: &str,
        _now: i64,
    ) -> Vec<PartnerRequest> {
        let test = match setting(connector, "test_mode") {
            Some("true") => "?test=true",
            _ => "",
        };
        let url = format!(
            "{}/v5/ad_accounts/{}/events{test}",
            base_url.trim_end_matches('/'),
            query_value(setting(connector, "ad_account_id").unwrap_or_default()),
        );
        let headers = [(
            "Authorization".to_owned(),
            format!("Bearer {}", secret(connector, "access_token")),
        )];
        data_requests(
            &url,
            &headers,
            "",
            events,
            PARTNER.max_batch_size as usize,
            None,
        )
    }

    fn classify(&self, response: &PartnerResponse, sent: usize) -> Verdict {
        let status = response.status;
        let body = response.json();
        if response.is_success() {
            let processed = body["num_events_processed"]
                .as_u64()
                .map_or(sent, |n| usize::try_from(n).unwrap_or(usize::MAX));
            return processed_verdict(status, processed, sent, &body["events"]);
        }
        // "Not all events were successfully processed": when its details
        // list each event's status as a 200 does, the processed ones count.
        if status == 422
            && let Some(events) = body["details"]["events"].as_array()
        {
            let processed = events
                .iter()
                .filter(|event| event["status"] == "processed")
                .count();
            return processed_verdict(status, processed, sent, &body["details"]["events"]);
        }
        let partner_code = match body["code"].as_i64() {
            Some(code) => format!("{status}/{code}"),
            None => status.to_string(),
        };
        let message = body["message"]
            .as_str()
            .map_or_else(|| excerpt(&response.body), str::to_owned);
        Verdict::Failed(status_failure(response, partner_code, message))
    }
}

/// Delivered when `processed` covers the `sent` events; otherwise the
/// rest failed, with the first `error_message` of `events`.
fn processed_verdict(status: u16, processed: usize, sent: usize, events: &Value) -> Verdict {
    if processed >= sent {
        return Verdict::Delivered;
    }
    let first_error = events
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|event| event["error_message"].as_str())
        .unwrap_or("no reason given");
    Verdict::Partial {
        accepted: processed,
        failure: Failure {
            category: ErrorCategory::PartnerError,
            partner_code: format!("{status}/events_processed"),
            message: format!(
                "Pinterest processed {processed} of {sent} events: {}",
                first_error.chars().take(MAX_QUOTED).collect::<String>()
            ),
            retry: Retry::Never,
        },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn account(test_mode: bool) -> ConnectorConfig {
        let mut settings = vec![("ad_account_id".to_owned(), "549755885175".to_owned())];
        if test_mode {
            settings.push(("test_mode".to_owned(), "true".to_owned()));
        }
        ConnectorConfig {
            partner: "pinterest".into(),
            settings: settings.into_iter().collect(),
            secrets: [("access_token".to_owned(), "pina_AMAtoken".to_owned())].into(),
            ..Default::default()
        }
    }

    fn response(status: u16, body: Value) -> PartnerResponse {
        PartnerResponse::with_json(status, &body)
    }

    #[test]
    fn builds_the_v5_request_with_listed_identifiers_and_a_string_value() {
        let connector = account(false);
        let fields = json!({
            "event_name": "checkout",
            "event_time": 1_764_435_600,
            "event_id": "evt-1",
            "event_source_url": "https://shop.example/checkout",
            "user_data": {
                "em": "411e44ce1261728ffd2c0686e44e3fffe413c0e2c5adc498bc7da883d476b9c8",
                "client_ip_address": "216.3.128.12",
                "client_user_agent": "Mozilla/5.0"
            },
            "custom_data": {"currency": "USD", "value": 72.39, "num_items": 2}
        });
        let events: Vec<Prepared> = (0..2500)
            .map(|i| Pinterest.prepare(&connector, &format!("evt-{i}"), fields.clone()))
            .collect();
        let requests = Pinterest.requests(&connector, &events, "https://api.pinterest.com", 0);
        assert_eq!(
            requests.iter().map(|r| r.events.len()).collect::<Vec<_>>(),
            [1000, 1000, 500]
        );
        assert_eq!(
            requests[0].url,
            "https://api.pinterest.com/v5/ad_accounts/549755885175/events"
        );
        assert_eq!(
            requests[0].headers,
            [(
                "Authorization".to_owned(),
                "Bearer pina_AMAtoken".to_owned()
            )]
        );
        let body: Value = serde_json::from_slice(&requests[2].body).expect("json");
        assert_eq!(
            body,
            json!({"data": vec![json!({
                "event_name": "checkout",
                "event_time": 1_764_435_600,
                "event_id": "evt-1",
                "event_source_url": "https://shop.example/checkout",
                "action_source": "web",
                "user_data": {
                    "em": ["411e44ce1261728ffd2c0686e44e3fffe413c0e2c5adc498bc7da883d476b9c8"],
                    "client_ip_address": "216.3.128.12",
                    "client_user_agent": "Mozilla/5.0"
                },
                "custom_data": {"currency": "USD", "value": "72.39", "num_items": 2}
            }); 500]})
        );
        let test = Pinterest.requests(&account(true), &events[..1], "https://api.pinterest.com", 0);
        assert_eq!(
            test[0].url,
            "https://api.pinterest.com/v5/ad_accounts/549755885175/events?test=true"
        );
    }

    #[test]
    fn reads_processed_counts() {
        let all = json!({"num_events_received": 2, "num_events_processed": 2, "events": [{"status": "processed", "error_message": null, "warning_message": null}, {"status": "processed", "error_message": null, "warning_message": null}]});
        assert_eq!(
            Pinterest.classify(&response(200, all), 2),
            Verdict::Delivered
        );
        let part = json!({"num_events_received": 2, "num_events_processed": 1, "events": [{"status": "processed", "error_message": null, "warning_message": null}, {"status": "failed", "error_message": "event_time is too far in the past", "warning_message": null}]});
        let Verdict::Partial { accepted, failure } = Pinterest.classify(&response(200, part), 2)
        else {
            panic!("one of two processed is partial");
        };
        assert_eq!(accepted, 1);
        assert_eq!(failure.partner_code, "200/events_processed");
        assert_eq!(
            failure.message,
            "Pinterest processed 1 of 2 events: event_time is too far in the past"
        );
        assert_eq!(failure.retry, Retry::Never);
    }

    #[test]
    fn a_422_listing_each_event_counts_the_processed_ones() {
        let body = json!({"code": 422, "message": "Not all events were successfully processed.", "details": {"events": [
            {"status": "processed", "error_message": null, "warning_message": null},
            {"status": "failed", "error_message": "event_name Purchase is not one of checkout, ...", "warning_message": null}
        ]}});
        let Verdict::Partial { accepted, failure } = Pinterest.classify(&response(422, body), 2)
        else {
            panic!("one of two processed is partial");
        };
        assert_eq!(accepted, 1);
        assert_eq!(failure.partner_code, "422/events_processed");
        assert!(
            failure
                .message
                .ends_with("event_name Purchase is not one of checkout, ...")
        );
    }

    #[test]
    fn every_documented_error_is_classified() {
        let cases = [
            (
                400,
                4196,
                "The request was invalid.",
                ErrorCategory::PartnerError,
                Retry::Never,
            ),
            (
                401,
                2,
                "Authentication failed.",
                ErrorCategory::InvalidCredentials,
                Retry::Never,
            ),
            (
                403,
                29,
                "You are not permitted to access that resource.",
                ErrorCategory::InvalidCredentials,
                Retry::Never,
            ),
            // 422's code is not documented; whatever it is is read alike.
            (
                422,
                4232,
                "Not all events were successfully processed.",
                ErrorCategory::PartnerError,
                Retry::Never,
            ),
            (
                429,
                8,
                "This request exceeded a rate limit. This can happen if the client exceeds one\nof the published rate limits within a short time window.",
                ErrorCategory::PartnerError,
                Retry::Later(None),
            ),
            (
                503,
                4197,
                "The endpoint has been ramped down and is currently not accepting any traffic.",
                ErrorCategory::PartnerError,
                Retry::Later(None),
            ),
        ];
        for (status, code, message, category, retry) in cases {
            let body = json!({"code": code, "message": message});
            let Verdict::Failed(failure) = Pinterest.classify(&response(status, body), 3) else {
                panic!("{status} must fail");
            };
            assert_eq!(
                (failure.category, failure.retry),
                (category, retry),
                "{status}"
            );
            assert_eq!(failure.partner_code, format!("{status}/{code}"));
            assert_eq!(failure.message, message);
        }
        let with_retry_after = PartnerResponse {
            retry_after: Some(std::time::Duration::from_secs(7)),
            ..response(429, json!({"code": 8, "message": "rate limit"}))
        };
        let Verdict::Failed(failure) = Pinterest.classify(&with_retry_after, 1) else {
            panic!("429 fails");
        };
        assert_eq!(
            failure.retry,
            Retry::Later(Some(std::time::Duration::from_secs(7)))
        );
    }
}
