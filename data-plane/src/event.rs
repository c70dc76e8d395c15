//! One raw event as producers send it: a JSON object, as a historic event
//! export gives it, with `id`, `workspace_id` and `type` as non-empty
//! strings. Parsed once; everything downstream reads the parsed value.
//!
//! A producer whose credential is scoped to one workspace may leave
//! `workspace_id` out (the scope's is filled in) but may not name another.

use eventconnectors_proto::v1::RejectReason;
use serde_json::{Map, Value};

/// Largest event accepted by default (bytes of JSON).
pub const DEFAULT_MAX_EVENT_BYTES: usize = 64 * 1024;

/// An accepted event: the parsed object, whose `id`, `workspace_id` and
/// `type` are known to be non-empty strings.
#[derive(Debug, Clone, PartialEq)]
pub struct RawEvent {
    /// The whole event.
    pub body: Value,
    /// `workspace_id` was filled in from the credential's scope: the text
    /// the producer sent lacks it.
    pub filled_workspace: bool,
}

impl RawEvent {
    fn field(&self, name: &str) -> &str {
        self.body[name].as_str().unwrap_or_default()
    }

    /// `id`: the producer's identifier, used for deduplication downstream.
    pub fn id(&self) -> &str {
        self.field("id")
    }

    /// `workspace_id`: whose connectors receive it.
    pub fn workspace_id(&self) -> &str {
        self.field("workspace_id")
    }

    /// `type`: what filters match on.
    pub fn event_type(&self) -> &str {
        self.field("type")
    }
}

/// Why an event was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The reason as a code.
    pub reason: RejectReason,
    /// The reason for people.
    pub detail: String,
}

fn rejected(reason: RejectReason, detail: impl Into<String>) -> Rejected {
    Rejected {
        reason,
        detail: detail.into(),
    }
}

/// Parses one event of at most `max_bytes`, from a producer allowed into
/// `scope` (`None`: every workspace).
pub fn parse(text: &str, max_bytes: usize, scope: Option<&str>) -> Result<RawEvent, Rejected> {
    if text.len() > max_bytes {
        return Err(rejected(
            RejectReason::TooLarge,
            format!("{} bytes; the limit is {max_bytes}", text.len()),
        ));
    }
    let mut body: Value = serde_json::from_str(text)
        .map_err(|error| rejected(RejectReason::InvalidJson, format!("not JSON: {error}")))?;
    let Value::Object(object) = &mut body else {
        return Err(rejected(
            RejectReason::NotAnObject,
            "an event is a JSON object",
        ));
    };
    let filled_workspace = match (object.get("workspace_id"), scope) {
        (None, Some(own)) => {
            object.insert("workspace_id".to_owned(), Value::String(own.to_owned()));
            true
        }
        (Some(Value::String(named)), Some(own)) if named != own && !named.trim().is_empty() => {
            let named: String = named.chars().take(64).collect();
            return Err(rejected(
                RejectReason::WrongWorkspace,
                format!(
                    "`workspace_id` is `{named}` but the credential may only ingest into `{own}`"
                ),
            ));
        }
        _ => false,
    };
    for field in ["id", "workspace_id", "type"] {
        required(object, field)?;
    }
    Ok(RawEvent {
        body,
        filled_workspace,
    })
}

fn required(object: &Map<String, Value>, field: &str) -> Result<(), Rejected> {
    match object.get(field) {
        Some(Value::String(value)) if !value.trim().is_empty() => Ok(()),
        Some(_) => Err(rejected(
            RejectReason::MissingField,
            format!("`{field}` must be a non-empty string"),
        )),
        None => Err(rejected(
            RejectReason::MissingField,
            format!("`{field}` is required"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_well_formed_event() {
        let event = parse(
            r#"{"id":"e1","workspace_id":"acme","type":"order_completed","properties":{"total":12}}"#,
            DEFAULT_MAX_EVENT_BYTES,
            None,
        )
        .expect("accepted");
        assert_eq!(
            (event.id(), event.workspace_id(), event.event_type()),
            ("e1", "acme", "order_completed")
        );
        assert_eq!(event.body["properties"]["total"], 12);
    }

    #[test]
    fn every_rejection_has_its_reason() {
        let cases = [
            ("{not json", RejectReason::InvalidJson),
            ("[1, 2]", RejectReason::NotAnObject),
            ("\"text\"", RejectReason::NotAnObject),
            (
                r#"{"workspace_id":"a","type":"t"}"#,
                RejectReason::MissingField,
            ),
            (
                r#"{"id":"","workspace_id":"a","type":"t"}"#,
                RejectReason::MissingField,
            ),
            (
                r#"{"id":7,"workspace_id":"a","type":"t"}"#,
                RejectReason::MissingField,
            ),
            (r#"{"id":"e","type":"t"}"#, RejectReason::MissingField),
            (
                r#"{"id":"e","workspace_id":"a"}"#,
                RejectReason::MissingField,
            ),
        ];
        for (text, reason) in cases {
            let rejection = parse(text, DEFAULT_MAX_EVENT_BYTES, None).expect_err(text);
            assert_eq!(rejection.reason, reason, "{text}: {}", rejection.detail);
        }
        let big = format!(
            r#"{{"id":"e","workspace_id":"a","type":"t","pad":"{}"}}"#,
            "x".repeat(100)
        );
        assert_eq!(
            parse(&big, 64, None).expect_err("too large").reason,
            RejectReason::TooLarge
        );
        let missing = parse(r#"{"id":"e","type":"t"}"#, 1024, None).expect_err("missing");
        assert!(
            missing.detail.contains("workspace_id"),
            "{}",
            missing.detail
        );
    }

    #[test]
    fn a_scoped_producer_stays_in_its_workspace() {
        let own = parse(
            r#"{"id":"e","workspace_id":"a","type":"t"}"#,
            1024,
            Some("a"),
        )
        .expect("its own workspace");
        assert!(!own.filled_workspace);
        let filled = parse(r#"{"id":"e","type":"t"}"#, 1024, Some("a")).expect("filled in");
        assert_eq!(
            (filled.workspace_id(), filled.filled_workspace),
            ("a", true)
        );
        let other = parse(
            r#"{"id":"e","workspace_id":"b","type":"t"}"#,
            1024,
            Some("a"),
        )
        .expect_err("another workspace");
        assert_eq!(other.reason, RejectReason::WrongWorkspace);
        assert!(other.detail.contains("`b`") && other.detail.contains("`a`"));
        let not_a_string = parse(r#"{"id":"e","workspace_id":7,"type":"t"}"#, 1024, Some("a"))
            .expect_err("not a string");
        assert_eq!(not_a_string.reason, RejectReason::MissingField);
    }
}
