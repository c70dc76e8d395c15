//! Sends one partner request over the node's shared keep-alive pool and
//! turns transport failures into categories: no answer in time is TIMEOUT,
//! no connection (refused, DNS, TLS) is RESOURCE_ACCESS, anything else
//! (a reset mid-answer, a broken body) is OTHER. All of them may be retried.

use std::time::Duration;

use eventconnectors_proto::v1::ErrorCategory;
use reqwest::header::{CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER};

use partners::adapter::{Failure, PartnerRequest, PartnerResponse, Retry};

/// Most of a partner's answer the node reads.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// A Retry-After value: delay-seconds, or an HTTP date (the wait until it).
fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let wait = at.duration_since(jiff::Timestamp::now());
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

/// The node's HTTP client for partners.
#[derive(Debug, Clone)]
pub struct PartnerClient {
    http: reqwest::Client,
    timeout: Duration,
}

impl PartnerClient {
    /// A client giving each request `timeout` to be answered in full.
    pub fn new(timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("eventconnectors/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http, timeout })
    }

    /// Sends `request`; `Err` is a failure before any HTTP answer.
    pub async fn send(&self, request: &PartnerRequest) -> Result<PartnerResponse, Failure> {
        let mut builder = self
            .http
            .post(&request.url)
            .timeout(self.timeout)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in &request.headers {
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) else {
                return Err(Failure {
                    category: ErrorCategory::Other,
                    partner_code: String::new(),
                    message: format!("header `{name}` cannot be sent as HTTP"),
                    retry: Retry::Never,
                });
            };
            builder = builder.header(name, value);
        }
        let response = builder
            .body(request.body.clone())
            .send()
            .await
            .map_err(|error| self.transport_failure(&error))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(retry_after);
        // Only the start of a body is ever read (status, codes, an
        // excerpt): a partner cannot make the node buffer more.
        let mut response = response;
        let mut body = Vec::new();
        while body.len() < MAX_BODY_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(error) => return Err(self.transport_failure(&error)),
            }
        }
        body.truncate(MAX_BODY_BYTES);
        Ok(PartnerResponse {
            status,
            retry_after,
            body,
        })
    }

    fn transport_failure(&self, error: &reqwest::Error) -> Failure {
        let (category, message) = if error.is_timeout() {
            (
                ErrorCategory::Timeout,
                format!(
                    "no answer within {}",
                    humantime::format_duration(self.timeout)
                ),
            )
        } else if error.is_connect() {
            (
                ErrorCategory::ResourceAccess,
                format!("could not connect: {}", root_cause(error)),
            )
        } else {
            (ErrorCategory::Other, root_cause(error))
        };
        Failure {
            category,
            partner_code: String::new(),
            message,
            retry: Retry::Later(None),
        }
    }
}

/// The innermost error's text (reqwest's own says only "error sending
/// request"), without the URL, which may carry a secret in its query.
fn root_cause(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        assert_eq!(retry_after(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO),
            "a date in the past: no wait"
        );
        let later = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(90);
        let date = jiff::fmt::rfc2822::DateTimePrinter::new()
            .timestamp_to_rfc9110_string(&later)
            .expect("printable");
        let wait = retry_after(&date).expect("parsed");
        assert!(
            (Duration::from_secs(85)..=Duration::from_secs(90)).contains(&wait),
            "{wait:?}"
        );
        assert_eq!(retry_after("soon"), None);
    }
}
