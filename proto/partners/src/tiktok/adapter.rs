//! TikTok Events API v1.3: `POST {base}/open_api/v1.3/event/track/` with the
//! `Access-Token` header (no `Bearer`). Errors arrive in the body, also with
//! HTTP 200: `code` 0 and 20001 are success, 40100 (throttled) and 40700
//! are retried, 40105 is a bad token, other codes (40001, 40002, ...) fail.

use eventconnectors_proto::v1::{ConnectorConfig, ErrorCategory};

use super::PARTNER;
use crate::adapter::{Adapter, Failure, PartnerRequest, PartnerResponse, Prepared, Retry, Verdict};
use crate::http::{answer_failure, data_requests, excerpt, json_string, secret, setting};

/// The TikTok adapter.
#[derive(Debug)]
pub struct TikTok;

impl Adapter for TikTok {
    fn requests(
        &self,
        connector: &ConnectorConfig,
        events: &[Prepared],
        base_url: &str,
        _now: i64,
    ) -> Vec<PartnerRequest> {
        let url = format!(
            "{}/open_api/v1.3/event/track/",
            base_url.trim_end_matches('/')
        );
        let headers = [(
            "Access-Token".to_owned(),
            secret(connector, "access_token").to_owned(),
        )];
        let head = format!(
            r#""event_source":"web","event_source_id":{},"#,
            json_string(setting(connector, "pixel_code").unwrap_or_default())
        );
        data_requests(
            &url,
            &headers,
            &head,
            events,
            PARTNER.max_batch_size as usize,
            setting(connector, "test_event_code"),
        )
    }

    fn classify(&self, response: &PartnerResponse, _sent: usize) -> Verdict {
        let status = response.status;
        let body = response.json();
        let code = body["code"].as_i64();
        if !response.is_success() {
            let partner_code =
                code.map_or_else(|| status.to_string(), |code| format!("{status}/{code}"));
            return Verdict::Failed(answer_failure(response, partner_code));
        }
        let Some(code) = code else {
            return Verdict::Failed(Failure {
                category: ErrorCategory::Other,
                partner_code: status.to_string(),
                message: format!("unexpected TikTok response: {}", excerpt(&response.body)),
                retry: Retry::Later(None),
            });
        };
        let (category, retry) = match code {
            0 | 20001 => return Verdict::Delivered,
            40100 | 40700 => (
                ErrorCategory::PartnerError,
                Retry::Later(response.retry_after),
            ),
            40104 | 40105 => (ErrorCategory::InvalidCredentials, Retry::Never),
            _ => (ErrorCategory::PartnerError, Retry::Never),
        };
        Verdict::Failed(Failure {
            category,
            partner_code: format!("{status}/{code}"),
            message: body["message"].as_str().unwrap_or_default().to_owned(),
            retry,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn ok(body: Value) -> PartnerResponse {
        PartnerResponse::with_json(200, &body)
    }

    #[test]
    fn builds_event_track_requests_of_50() {
        let connector = ConnectorConfig {
            partner: "tiktok".into(),
            settings: [("pixel_code".to_owned(), "PIX1".to_owned())].into(),
            secrets: [("access_token".to_owned(), "tok".to_owned())].into(),
            ..Default::default()
        };
        let events: Vec<Prepared> = (0..120)
            .map(|i| Prepared::new(&format!("e{i}"), &json!({"event": "CompletePayment"})))
            .collect();
        let requests = TikTok.requests(
            &connector,
            &events,
            PARTNER.default_base_url.expect("a default"),
            0,
        );
        assert_eq!(
            requests.iter().map(|r| r.events.len()).collect::<Vec<_>>(),
            [50, 50, 20]
        );
        assert_eq!(
            requests[0].url,
            "https://business-api.tiktok.com/open_api/v1.3/event/track/"
        );
        assert_eq!(
            requests[0].headers,
            [("Access-Token".to_owned(), "tok".to_owned())]
        );
        let body: Value = serde_json::from_slice(&requests[0].body).expect("json");
        assert_eq!(
            (
                body["event_source"].as_str(),
                body["event_source_id"].as_str()
            ),
            (Some("web"), Some("PIX1"))
        );
    }

    #[test]
    fn errors_inside_a_200_are_failures() {
        assert_eq!(
            TikTok.classify(&ok(json!({"code": 0, "message": "OK"})), 2),
            Verdict::Delivered
        );
        let cases = [
            (40002, ErrorCategory::PartnerError, Retry::Never),
            (40105, ErrorCategory::InvalidCredentials, Retry::Never),
            (40100, ErrorCategory::PartnerError, Retry::Later(None)),
        ];
        for (code, category, retry) in cases {
            let body = json!({"code": code, "message": "Invalid value for event_id: not a valid string.", "request_id": "r"});
            let Verdict::Failed(failure) = TikTok.classify(&ok(body), 2) else {
                panic!("{code}")
            };
            assert_eq!(
                (failure.category, failure.retry),
                (category, retry),
                "{code}"
            );
            assert_eq!(failure.partner_code, format!("200/{code}"));
        }
    }
}
