//! Sends one partner request over a shared keep-alive pool and
//! turns transport failures into categories: no answer in time is TIMEOUT,
//! no connection (refused, DNS, TLS) is RESOURCE_ACCESS, anything else
//! (a reset mid-answer, a broken body) is OTHER. All of them may be
//! retried, except a destination the policy refuses (a literal internal
//! address, or a name resolving only to internal addresses): that is
//! RESOURCE_ACCESS, not sent, not retried. Environment proxies are
//! ignored: every request goes where its URL says, through the check.

use std::sync::Arc;
use std::time::Duration;

use eventconnectors_proto::v1::ErrorCategory;
use reqwest::header::{CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER};

use partners::adapter::{Failure, PartnerRequest, PartnerResponse, Retry};
use partners::destination::DestinationPolicy;

use crate::destinations::{CheckedResolver, RefusedName};

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
    policy: Arc<DestinationPolicy>,
}

impl PartnerClient {
    /// A client giving each request `timeout` to be answered in full, to
    /// the destinations `policy` allows.
    pub fn new(timeout: Duration, policy: DestinationPolicy) -> Result<Self, reqwest::Error> {
        let policy = Arc::new(policy);
        let http = reqwest::Client::builder()
            .dns_resolver(Arc::new(CheckedResolver::new(Arc::clone(&policy))))
            .no_proxy()
            .connect_timeout(timeout)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("eventconnectors/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            timeout,
            policy,
        })
    }

    /// Sends `request`; `Err` is a failure before any HTTP answer.
    pub async fn send(&self, request: &PartnerRequest) -> Result<PartnerResponse, Failure> {
        if let Ok(url) = url::Url::parse(&request.url)
            && let Some(Err(refusal)) = self.policy.check_url(&url)
        {
            return Err(refused(refusal.to_string()));
        }
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
        if let Some(refusal) = find_source::<RefusedName>(error) {
            return refused(refusal.to_string());
        }
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

/// A destination the policy refuses: never sent, never retried.
fn refused(reason: String) -> Failure {
    Failure {
        category: ErrorCategory::ResourceAccess,
        partner_code: String::new(),
        message: format!("not sent: {reason}"),
        retry: Retry::Never,
    }
}

/// The first error of type `T` in `error`'s chain of sources.
fn find_source<T: std::error::Error + 'static>(error: &reqwest::Error) -> Option<&T> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if let Some(found) = current.downcast_ref::<T>() {
            return Some(found);
        }
        cause = current.source();
    }
    None
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

    fn request(url: &str) -> PartnerRequest {
        PartnerRequest {
            url: url.to_owned(),
            headers: Vec::new(),
            body: bytes::Bytes::from_static(b"{}"),
            events: vec![0],
        }
    }

    #[tokio::test]
    async fn refused_destinations_are_not_sent_nor_retried() {
        let client = PartnerClient::new(Duration::from_secs(2), DestinationPolicy::strict())
            .expect("client");
        for (url, says) in [
            ("http://169.254.169.254/latest/meta-data/", "link-local"),
            ("http://10.0.0.5/", "private"),
            ("http://[::1]:8080/", "loopback"),
            ("http://[::ffff:127.0.0.1]:8080/", "loopback"),
            (
                "http://localhost:9/hook",
                "resolves only to addresses the destination policy refuses",
            ),
        ] {
            let failure = client.send(&request(url)).await.expect_err(url);
            assert_eq!(failure.category, ErrorCategory::ResourceAccess, "{url}");
            assert_eq!(failure.retry, Retry::Never, "{url}");
            assert!(failure.message.contains(says), "{url}: {}", failure.message);
        }
    }

    #[tokio::test]
    async fn the_allowlist_lets_a_name_through_to_the_checked_address() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let policy = DestinationPolicy::with_allowlist("127.0.0.0/8, ::1/128").expect("list");
        let client = PartnerClient::new(Duration::from_secs(2), policy).expect("client");
        // Nothing listens there any more: the connection is attempted (and
        // refused by the kernel), which is what the policy allowed.
        let failure = client
            .send(&request(&format!("http://localhost:{port}/hook")))
            .await
            .expect_err("nothing listens");
        assert_eq!(failure.category, ErrorCategory::ResourceAccess);
        assert!(matches!(failure.retry, Retry::Later(_)), "{failure:?}");
        assert!(
            !failure.message.contains("destination policy"),
            "{}",
            failure.message
        );
    }

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
