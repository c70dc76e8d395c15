//! Webhooks, signed per Standard Webhooks: one event per request, the
//! `webhook-id` / `webhook-timestamp` / `webhook-signature` headers, custom
//! headers from `header.*` settings and secrets, an optional Authorization
//! secret.
//! Only 2xx is success; 3xx is a failure (redirects are not followed); 410
//! means the endpoint is gone.

use eventconnectors_proto::v1::{ConnectorConfig, ErrorCategory};

use super::signature::sign;
use crate::adapter::{Adapter, Failure, PartnerRequest, PartnerResponse, Prepared, Retry, Verdict};
use crate::http::answer_failure;

/// The webhook adapter.
#[derive(Debug)]
pub struct Webhook;

impl Adapter for Webhook {
    fn requests(
        &self,
        connector: &ConnectorConfig,
        events: &[Prepared],
        _base_url: &str,
        now: i64,
    ) -> Vec<PartnerRequest> {
        let url = connector.settings.get("url").cloned().unwrap_or_default();
        // Headers from settings and, for credentials, from secrets.
        let custom: Vec<(String, String)> = connector
            .settings
            .iter()
            .chain(&connector.secrets)
            .filter_map(|(name, value)| {
                Some((name.strip_prefix("header.")?.to_owned(), value.clone()))
            })
            .collect();
        events
            .iter()
            .enumerate()
            .map(|(index, event)| {
                let body = bytes::Bytes::copy_from_slice(event.json.as_bytes());
                let mut headers = vec![
                    ("webhook-id".to_owned(), event.event_id.to_string()),
                    ("webhook-timestamp".to_owned(), now.to_string()),
                ];
                if let Some(signed) = connector
                    .secrets
                    .get("signing_secret")
                    .and_then(|secret| sign(secret, &event.event_id, now, &body))
                {
                    headers.push(("webhook-signature".to_owned(), signed));
                }
                if let Some(authorization) = connector.secrets.get("authorization") {
                    headers.push(("authorization".to_owned(), authorization.clone()));
                }
                headers.extend(custom.iter().cloned());
                PartnerRequest {
                    url: url.clone(),
                    headers,
                    body,
                    events: vec![index],
                }
            })
            .collect()
    }

    fn classify(&self, response: &PartnerResponse, _sent: usize) -> Verdict {
        let status = response.status;
        if response.is_success() {
            return Verdict::Delivered;
        }
        if status == 410 {
            return Verdict::Failed(Failure {
                category: ErrorCategory::PartnerError,
                partner_code: "410".into(),
                message: "the endpoint is gone (410)".into(),
                retry: Retry::Never,
            });
        }
        Verdict::Failed(answer_failure(response, status.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn one_request_per_event_with_every_header() {
        let connector = ConnectorConfig {
            partner: "webhook".into(),
            settings: [
                ("url".to_owned(), "https://hooks.example/in".to_owned()),
                ("header.X-Team".to_owned(), "growth".to_owned()),
            ]
            .into(),
            secrets: [
                (
                    "signing_secret".to_owned(),
                    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
                ),
                ("authorization".to_owned(), "Bearer abc".to_owned()),
                ("header.X-Api-Key".to_owned(), "k3y".to_owned()),
            ]
            .into(),
            ..Default::default()
        };
        let events = [
            Prepared::new("e1", &json!({"a": 1})),
            Prepared::raw("e2", r#"{"a": 2}"#.to_owned()),
        ];
        let requests = Webhook.requests(&connector, &events, "", 1_700_000_000);
        assert_eq!(requests.len(), 2);
        let first = &requests[0];
        assert_eq!(first.url, "https://hooks.example/in");
        assert_eq!(&first.body[..], br#"{"a":1}"#);
        assert_eq!(first.events, [0]);
        let header = |name: &str| {
            first
                .headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("webhook-id"), Some("e1"));
        assert_eq!(header("webhook-timestamp"), Some("1700000000"));
        assert_eq!(
            header("webhook-signature"),
            sign(
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "e1",
                1_700_000_000,
                br#"{"a":1}"#
            )
            .as_deref()
        );
        assert_eq!(header("authorization"), Some("Bearer abc"));
        assert_eq!(header("X-Team"), Some("growth"));
        assert_eq!(header("X-Api-Key"), Some("k3y"), "a secret header");
    }

    #[test]
    fn only_2xx_succeeds() {
        let response = |status| PartnerResponse {
            status,
            retry_after: None,
            body: b"nope".to_vec(),
        };
        assert_eq!(Webhook.classify(&response(204), 1), Verdict::Delivered);
        for (status, category, retry) in [
            (302, ErrorCategory::PartnerError, Retry::Never),
            (400, ErrorCategory::PartnerError, Retry::Never),
            (401, ErrorCategory::InvalidCredentials, Retry::Never),
            (410, ErrorCategory::PartnerError, Retry::Never),
            (429, ErrorCategory::PartnerError, Retry::Later(None)),
            (502, ErrorCategory::PartnerError, Retry::Later(None)),
        ] {
            let Verdict::Failed(failure) = Webhook.classify(&response(status), 1) else {
                panic!("{status} must fail");
            };
            assert_eq!(
                (failure.category, failure.retry),
                (category, retry),
                "{status}"
            );
            assert_eq!(failure.partner_code, status.to_string());
        }
    }
}
