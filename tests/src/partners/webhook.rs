//! A Standard Webhooks receiver: `POST` on any path, one event per request.
//! With a signing key it verifies `webhook-id`, `webhook-timestamp` and
//! `webhook-signature` as the reference library does (HMAC-SHA256 over
//! `{id}.{timestamp}.{body}`, `v1,` entries only, timestamps within 5
//! minutes) and answers 401 with the library's reason. Success is 204.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde::de::IgnoredAny;
use sha2::Sha256;

use super::{Checked, FakeApi, Incoming, SampleConnector, plain, unix_now};

/// Timestamps more than 5 minutes off are refused.
const WEBHOOK_TOLERANCE_SECONDS: i64 = 300;

/// The fake webhook receiver.
#[derive(Debug, Clone, Copy)]
pub struct Webhook;

impl FakeApi for Webhook {
    fn partner(&self) -> &'static str {
        "webhook"
    }

    fn routes(&self) -> &'static [&'static str] {
        &["/", "/{*path}"]
    }

    /// Connectors point at `/hook` under the fake.
    fn url(&self, base_url: &str) -> String {
        format!("{base_url}/hook")
    }

    fn check(&self, request: &Incoming<'_>) -> Checked {
        check_webhook(request)
    }

    fn accept(&self, _request: &Incoming<'_>, _events: usize) -> Response {
        StatusCode::NO_CONTENT.into_response()
    }

    /// A receiver has no codes of its own: the status and the message.
    fn error(
        &self,
        status: StatusCode,
        _code: &str,
        message: &str,
        _request: &Incoming<'_>,
    ) -> Response {
        plain(status, message)
    }

    fn connector(&self, url: &str) -> SampleConnector {
        SampleConnector::of(&[("url", url)], &[])
    }
}

/// A webhook carries one event. With a signing key, a request failing
/// Standard Webhooks verification is answered 401 with the reference
/// library's reason as plain text; then a body that is not JSON gets 400.
fn check_webhook(request: &Incoming<'_>) -> Checked {
    let (headers, body) = (request.headers, request.body);
    let verified = request
        .signing_key
        .map(|key| verify_webhook(key, headers, body, unix_now()));
    let refusal = match verified {
        Some(Err(reason)) => Some(plain(StatusCode::UNAUTHORIZED, reason)),
        _ if serde_json::from_slice::<IgnoredAny>(body).is_err() => {
            Some(plain(StatusCode::BAD_REQUEST, "The body is not JSON"))
        }
        _ => None,
    };
    Checked { events: 1, refusal }
}

/// Standard Webhooks verification: the three headers are required, the
/// timestamp must be within 5 minutes of `now`, and one `v1,` entry of the
/// space-separated signature list must be the base64 HMAC-SHA256 of
/// `{id}.{timestamp}.{body}` (compared in constant time; other versions are
/// ignored). Errors are the reference library's messages.
fn verify_webhook(
    key: &[u8],
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<(), &'static str> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let (Some(id), Some(timestamp), Some(signatures)) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    ) else {
        return Err("Missing required headers");
    };
    let sent: i64 = timestamp.parse().map_err(|_| "Invalid Signature Headers")?;
    if sent < now - WEBHOOK_TOLERANCE_SECONDS {
        return Err("Message timestamp too old");
    }
    if sent > now + WEBHOOK_TOLERANCE_SECONDS {
        return Err("Message timestamp too new");
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any size");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let matches = signatures
        .split(' ')
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|signature| STANDARD.decode(signature).ok())
        .any(|signature| mac.clone().verify_slice(&signature).is_ok());
    if matches {
        Ok(())
    } else {
        Err("No matching signature found")
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use serde_json::Value;

    use super::super::FakePartner;
    use super::super::test_client::post;
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn sign(id: &str, timestamp: &str, body: &str) -> String {
        let key = STANDARD
            .decode(SECRET.trim_start_matches("whsec_"))
            .expect("base64");
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("key");
        mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn verifies_the_standard_webhooks_reference_vector() {
        let key = STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .expect("base64");
        let body = br#"{"test": 2432232314}"#;
        let headers = |signature: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                "webhook-id",
                HeaderValue::from_static("msg_p5jXN8AQM9LWM0D4loKWxJek"),
            );
            headers.insert("webhook-timestamp", HeaderValue::from_static("1614265330"));
            headers.insert("webhook-signature", signature.parse().expect("ascii"));
            headers
        };
        let good = "v1a,abc v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        assert_eq!(
            verify_webhook(&key, &headers(good), body, 1_614_265_330),
            Ok(())
        );
        assert_eq!(
            verify_webhook(&key, &headers(good), body, 1_614_265_330 + 301),
            Err("Message timestamp too old")
        );
        assert_eq!(
            verify_webhook(&key, &headers(good), body, 1_614_265_330 - 301),
            Err("Message timestamp too new")
        );
        let other = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OF=";
        assert_eq!(
            verify_webhook(&key, &headers(other), body, 1_614_265_330),
            Err("No matching signature found")
        );
        assert_eq!(
            verify_webhook(&key, &HeaderMap::new(), body, 0),
            Err("Missing required headers")
        );
    }

    #[tokio::test]
    async fn webhook_signatures_are_accepted_and_rejected() {
        let fake = FakePartner::start(&Webhook).await;
        fake.verify_signatures(SECRET);
        let now = unix_now().to_string();
        let body = r#"{"type":"purchase","data":{"value":3}}"#;
        let signed = sign("e1", &now, body);
        let headers = [
            ("webhook-id", "e1"),
            ("webhook-timestamp", now.as_str()),
            ("webhook-signature", signed.as_str()),
        ];

        let (status, _, _) = post(&fake.url(), &headers, body).await.expect("answered");
        assert_eq!(status, 204);
        let (status, _, text) = post(&fake.url(), &headers, r#"{"type":"other"}"#)
            .await
            .expect("answered");
        assert_eq!(
            (status, text.as_str()),
            (401, "No matching signature found")
        );
        let (status, _, text) = post(&fake.url(), &headers[..2], body)
            .await
            .expect("answered");
        assert_eq!((status, text.as_str()), (401, "Missing required headers"));
        let stale = (unix_now() - 600).to_string();
        let stale_signed = sign("e1", &stale, body);
        let stale_headers = [
            ("webhook-id", "e1"),
            ("webhook-timestamp", stale.as_str()),
            ("webhook-signature", stale_signed.as_str()),
        ];
        let (status, _, text) = post(&fake.url(), &stale_headers, body)
            .await
            .expect("answered");
        assert_eq!((status, text.as_str()), (401, "Message timestamp too old"));
        let not_json = sign("e1", &now, "nope");
        let headers = [
            ("webhook-id", "e1"),
            ("webhook-timestamp", now.as_str()),
            ("webhook-signature", not_json.as_str()),
        ];
        assert_eq!(
            post(&fake.url(), &headers, "nope")
                .await
                .expect("answered")
                .0,
            400
        );

        let recorded = fake.requests();
        assert_eq!(recorded[0].path, "/hook");
        assert_eq!(recorded[0].headers["webhook-id"], "e1");
        assert_eq!(recorded[0].body["data"]["value"], 3);
        assert_eq!(recorded[4].body, Value::String("nope".into()));
    }
}
