//! What an adapter is: it turns a batch of transformed events into the
//! partner's exact requests, and reads the partner's exact responses into a
//! verdict (delivered, partly delivered, failed with a category, a partner
//! code and whether a retry can help). Adapters do no I/O: the data plane
//! sends what they build and hands them what came back.

use std::time::Duration;

use eventconnectors_proto::v1::{ConnectorConfig, ErrorCategory};
use serde_json::Value;

use crate::redact::hide_secrets;

/// An event ready to send, serialized once when it is accepted: a queued
/// event costs its bytes, and a request body is built by concatenation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The raw event's `id` (idempotency and deduplication key).
    pub event_id: Box<str>,
    /// Members every event of one request must share (GA4's client:
    /// `"client_id":"c1","user_id":"U1"`), serialized without braces; empty
    /// for partners that batch any events together.
    pub group: Box<str>,
    /// The event's JSON as it goes into the request.
    pub json: Box<str>,
}

impl Prepared {
    /// An event whose JSON is `fields`, in no group.
    pub fn new(event_id: &str, fields: &Value) -> Self {
        // Straight into a buffer: `Display` would go through `fmt`.
        Self::raw(
            event_id,
            serde_json::to_string(fields).expect("JSON values serialize"),
        )
    }

    /// An event whose JSON is already written (a raw event forwarded as
    /// it came): the text is moved in, not copied.
    pub fn raw(event_id: &str, json: String) -> Self {
        Self {
            event_id: event_id.into(),
            group: "".into(),
            json: json.into_boxed_str(),
        }
    }
}

/// One HTTP request to a partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerRequest {
    /// Absolute URL, query included.
    pub url: String,
    /// Headers besides content-type (always `application/json`).
    pub headers: Vec<(String, String)>,
    /// JSON body (shared, not copied, by each attempt).
    pub body: bytes::Bytes,
    /// Indexes (into the batch) of the events this request carries.
    pub events: Vec<usize>,
}

/// A partner's answer, as delivery saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerResponse {
    /// HTTP status.
    pub status: u16,
    /// The Retry-After header, parsed.
    pub retry_after: Option<Duration>,
    /// The body.
    pub body: Vec<u8>,
}

impl PartnerResponse {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// An answer with `status` and `body` as JSON (for adapter tests).
    pub fn with_json(status: u16, body: &Value) -> Self {
        Self {
            status,
            retry_after: None,
            body: serde_json::to_vec(body).expect("JSON values serialize"),
        }
    }
}

/// Whether trying again can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// No: the same request will fail the same way (bad credentials, a
    /// payload the partner rejects).
    Never,
    /// Yes, after the backoff schedule, or after the partner's Retry-After.
    Later(Option<Duration>),
}

/// A failed delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The category.
    pub category: ErrorCategory,
    /// HTTP status and the partner's own code, e.g. `400/190`.
    pub partner_code: String,
    /// The partner's message (or ours).
    pub message: String,
    /// Whether a retry can help.
    pub retry: Retry,
}

/// Secret values shorter than this are not scrubbed from partner text:
/// they would blank out ordinary words.
const MIN_SCRUBBED_CHARS: usize = 6;

/// `text` from a partner with every `secrets` value in it (of at least 6
/// characters) replaced by `***`. A partner that echoes the credential it
/// was sent ("invalid token EAAB…") must not put it into logs, statistics
/// or test results, which the connector's admins read.
pub fn scrub_answer<'a>(text: &str, secrets: impl IntoIterator<Item = &'a str>) -> String {
    hide_secrets(text, secrets, MIN_SCRUBBED_CHARS)
}

impl Failure {
    /// The failure with the partner's message and code scrubbed
    /// ([`scrub_answer`]).
    pub fn scrubbed<'a>(mut self, secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let secrets: Vec<&str> = secrets.into_iter().collect();
        self.message = scrub_answer(&self.message, secrets.iter().copied());
        self.partner_code = scrub_answer(&self.partner_code, secrets.iter().copied());
        self
    }
}

/// What became of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every event was accepted.
    Delivered,
    /// The partner accepted only `accepted` of the events (Meta's
    /// `events_received`); the rest failed with `failure`.
    Partial {
        /// Events accepted.
        accepted: usize,
        /// Why the others failed.
        failure: Failure,
    },
    /// Nothing was accepted.
    Failed(Failure),
}

/// A partner's wire format.
pub trait Adapter: Send + Sync + std::fmt::Debug {
    /// Serializes one transformed event for the partner (once, at intake).
    fn prepare(&self, _connector: &ConnectorConfig, event_id: &str, fields: Value) -> Prepared {
        Prepared::new(event_id, &fields)
    }

    /// The requests carrying `events` (at most the partner's batch limit
    /// each) to the partner's API at `base_url` (the deployment's, or the
    /// catalog's default). `now` is the unix time used for signatures.
    fn requests(
        &self,
        connector: &ConnectorConfig,
        events: &[Prepared],
        base_url: &str,
        now: i64,
    ) -> Vec<PartnerRequest>;

    /// The verdict on a response to a request carrying `sent` events.
    fn classify(&self, response: &PartnerResponse, sent: usize) -> Verdict;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoed_credentials_are_scrubbed_short_values_are_not() {
        let failure = Failure {
            category: ErrorCategory::InvalidCredentials,
            partner_code: "401/EAAB-token-123".into(),
            message: "invalid token EAAB-token-123 (EAAB-token-123); id 42".into(),
            retry: Retry::Never,
        };
        let scrubbed = failure.scrubbed(["EAAB-token-123", "42"]);
        assert_eq!(scrubbed.message, "invalid token *** (***); id 42");
        assert_eq!(scrubbed.partner_code, "401/***");
    }
}
