//! Meta Conversions API: `POST {base}/{version}/{pixel}/events?access_token=`
//! with `{"data": [...]}` (up to 1,000 events). A 2xx reports
//! `events_received`; fewer than sent means the rest failed. Errors are
//! Graph errors `{"error": {"code", "error_subcode", "message"}}`: 190/102
//! are credentials (often over HTTP 400), 4/17/32/341/613 throttling and
//! 1/2 temporary (retried), 10 and 200-299 permissions.

use eventconnectors_proto::v1::{ConnectorConfig, ErrorCategory};
use serde_json::Value;

use super::PARTNER;
use crate::adapter::{Adapter, Failure, PartnerRequest, PartnerResponse, Prepared, Retry, Verdict};
use crate::http::{
    answer_failure, data_requests, default_member, query_value, secret, setting, status_failure,
};

const DEFAULT_VERSION: &str = "v21.0";

/// The Meta CAPI adapter.
#[derive(Debug)]
pub struct MetaCapi;

impl Adapter for MetaCapi {
    fn prepare(&self, connector: &ConnectorConfig, event_id: &str, mut fields: Value) -> Prepared {
        let action_source = setting(connector, "action_source").unwrap_or("website");
        default_member(&mut fields, "action_source", action_source);
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
            "{}/{}/{}/events?access_token={}",
            base_url.trim_end_matches('/'),
            setting(connector, "api_version").unwrap_or(DEFAULT_VERSION),
            setting(connector, "pixel_id").unwrap_or_default(),
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

    fn classify(&self, response: &PartnerResponse, sent: usize) -> Verdict {
        let status = response.status;
        let body = response.json();
        if response.is_success() {
            let received = body["events_received"]
                .as_u64()
                .map_or(sent, |n| n as usize);
            if received >= sent {
                return Verdict::Delivered;
            }
            return Verdict::Partial {
                accepted: received,
                failure: Failure {
                    category: ErrorCategory::PartnerError,
                    partner_code: format!("{status}/events_received"),
                    message: format!("Meta received {received} of {sent} events"),
                    retry: Retry::Never,
                },
            };
        }
        let error = &body["error"];
        let Some(code) = error["code"].as_i64() else {
            return Verdict::Failed(answer_failure(response, status.to_string()));
        };
        let partner_code = format!("{status}/{code}");
        let message = error["message"].as_str().unwrap_or_default().to_owned();
        let later = Retry::Later(response.retry_after);
        let (category, retry) = match code {
            190 | 102 => (ErrorCategory::InvalidCredentials, Retry::Never),
            10 | 200..=299 => (ErrorCategory::InvalidCredentials, Retry::Never),
            1 | 2 | 4 | 17 | 32 | 341 | 613 => (ErrorCategory::PartnerError, later),
            _ => return Verdict::Failed(status_failure(response, partner_code, message)),
        };
        Verdict::Failed(Failure {
            category,
            partner_code,
            message,
            retry,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn response(status: u16, body: Value) -> PartnerResponse {
        PartnerResponse::with_json(status, &body)
    }

    #[test]
    fn builds_the_graph_request_in_batches_of_1000() {
        let connector = ConnectorConfig {
            partner: "meta_capi".into(),
            settings: [
                ("pixel_id".to_owned(), "123".to_owned()),
                ("test_event_code".to_owned(), "TEST1".to_owned()),
            ]
            .into(),
            secrets: [("access_token".to_owned(), "EA&B".to_owned())].into(),
            ..Default::default()
        };
        let events: Vec<Prepared> = (0..1500)
            .map(|i| {
                let fields = json!({"event_name": "Purchase", "event_id": format!("e{i}")});
                MetaCapi.prepare(&connector, &format!("e{i}"), fields)
            })
            .collect();
        let requests = MetaCapi.requests(
            &connector,
            &events,
            PARTNER.default_base_url.expect("a default"),
            0,
        );
        assert_eq!(requests.len(), 2);
        assert_eq!(
            requests[0].url,
            "https://graph.facebook.com/v21.0/123/events?access_token=EA%26B"
        );
        assert_eq!(
            (requests[0].events.len(), requests[1].events.len()),
            (1000, 500)
        );
        let body: Value = serde_json::from_slice(&requests[1].body).expect("json");
        assert_eq!(body["test_event_code"], "TEST1");
        assert_eq!(body["data"][0]["action_source"], "website");
        assert_eq!(body["data"][0]["event_id"], "e1000");
    }

    #[test]
    fn reads_events_received_and_graph_errors() {
        let ok = json!({"events_received": 3, "messages": [], "fbtrace_id": "A"});
        assert_eq!(MetaCapi.classify(&response(200, ok), 3), Verdict::Delivered);
        let short = json!({"events_received": 2, "messages": [], "fbtrace_id": "A"});
        let Verdict::Partial { accepted, failure } = MetaCapi.classify(&response(200, short), 3)
        else {
            panic!("fewer received than sent is not delivered");
        };
        assert_eq!(
            (accepted, failure.partner_code.as_str()),
            (2, "200/events_received")
        );

        let expired = json!({"error": {"message": "Error validating access token: Session has expired", "type": "OAuthException", "code": 190, "error_subcode": 463, "fbtrace_id": "B"}});
        let Verdict::Failed(failure) = MetaCapi.classify(&response(400, expired), 3) else {
            panic!("190")
        };
        assert_eq!(failure.category, ErrorCategory::InvalidCredentials);
        assert_eq!(failure.partner_code, "400/190");
        assert_eq!(failure.retry, Retry::Never);
        assert!(failure.message.contains("Session has expired"));

        let throttled = json!({"error": {"message": "User request limit reached", "code": 17}});
        let Verdict::Failed(failure) = MetaCapi.classify(&response(400, throttled), 3) else {
            panic!("17")
        };
        assert_eq!(
            (failure.category, failure.retry),
            (ErrorCategory::PartnerError, Retry::Later(None))
        );

        let invalid = json!({"error": {"message": "Invalid parameter", "code": 100}});
        let Verdict::Failed(failure) = MetaCapi.classify(&response(400, invalid), 3) else {
            panic!("100")
        };
        assert_eq!(
            (failure.partner_code.as_str(), failure.retry),
            ("400/100", Retry::Never)
        );

        let Verdict::Failed(failure) = MetaCapi.classify(&response(503, json!("down")), 3) else {
            panic!("503")
        };
        assert_eq!(
            (failure.partner_code.as_str(), failure.retry),
            ("503", Retry::Later(None))
        );
    }
}
