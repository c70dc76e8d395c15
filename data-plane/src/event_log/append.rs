//! Ingest in the durable mode: check each event, store the good ones in the
//! stream, and say which are stored only once JetStream has confirmed them.

use std::fmt::Write as _;

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;
use eventconnectors_proto::v1::RejectReason;
use futures::StreamExt;

use super::EventLog;
use crate::event;
use crate::metrics;
use crate::routing::Admission;

/// Publishes of one call awaiting confirmation at once.
const IN_FLIGHT: usize = 4096;

/// Why nothing of a batch could be stored.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The node has not reached the log yet.
    #[error("the event log is not reachable yet; retry shortly")]
    NotReady,
    /// The log did not confirm any event.
    #[error("the event log did not store the events ({0}); retry")]
    Unavailable(String),
    /// The log is full.
    #[error("the event log is full ({0}); retry later")]
    Full(String),
}

/// An event that passed the checks, ready to store.
#[derive(Debug)]
pub struct Checked {
    index: usize,
    message_id: String,
    payload: Bytes,
}

/// Checks `events` as the memory mode does, for a producer allowed into
/// `scope`: what is refused goes into the admission, the rest is returned
/// for [`EventLog::append`].
pub fn check(
    events: Vec<String>,
    scope: Option<&str>,
    max_event_bytes: usize,
) -> (Vec<Checked>, Admission) {
    let count = events.len();
    let mut admission = Admission::default();
    let mut checked = Vec::with_capacity(count);
    for (index, text) in events.into_iter().enumerate() {
        match event::parse(&text, max_event_bytes, scope) {
            Ok(event) => {
                let message_id = message_id(event.workspace_id(), event.id());
                let payload = if event.filled_workspace {
                    event.body.to_string()
                } else {
                    text
                };
                checked.push(Checked {
                    index,
                    message_id,
                    payload: Bytes::from(payload),
                });
            }
            Err(rejected) => {
                metrics::rejected(rejected.reason, 1);
                admission.reject(index, rejected.reason, rejected.detail);
            }
        }
    }
    metrics::received(count);
    (checked, admission)
}

/// The deduplication id of event `id` of `workspace`: a digest, as both
/// are the producer's text (any length, any characters) and a message id
/// is a header value.
fn message_id(workspace: &str, id: &str) -> String {
    let mut key = Vec::with_capacity(8 + workspace.len() + id.len());
    key.extend_from_slice(&(workspace.len() as u64).to_le_bytes());
    key.extend_from_slice(workspace.as_bytes());
    key.extend_from_slice(id.as_bytes());
    let digest = server_kit::auth::digest(&key);
    let mut text = String::with_capacity(32);
    for byte in &digest[..16] {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// What became of one publish.
enum Stored {
    New,
    Duplicate,
    Refused(String, bool),
}

impl EventLog {
    /// Stores `checked` events and completes `admission`: each one is
    /// accepted once JetStream confirms it, else refused NOT_STORED. `Err`
    /// when none could be stored.
    pub async fn append(
        &self,
        checked: Vec<Checked>,
        mut admission: Admission,
    ) -> Result<Admission, AppendError> {
        if checked.is_empty() {
            return Ok(admission);
        }
        let Some(connected) = self.connected.load_full() else {
            return Err(AppendError::NotReady);
        };
        let jetstream = &connected.jetstream;
        let subject = &connected.subject;
        let results: Vec<(usize, Stored)> = futures::stream::iter(checked)
            .map(|checked| async move {
                let publish = PublishMessage::build()
                    .message_id(&checked.message_id)
                    .payload(checked.payload);
                let stored = match jetstream.send_publish(subject.clone(), publish).await {
                    Ok(confirmation) => match confirmation.await {
                        Ok(ack) if ack.duplicate => Stored::Duplicate,
                        Ok(_) => Stored::New,
                        Err(error) => refused(error.kind(), &error),
                    },
                    Err(error) => refused(error.kind(), &error),
                };
                (checked.index, stored)
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        let (mut new, mut duplicates) = (0, 0);
        let mut failure: Option<(String, bool)> = None;
        for (index, stored) in results {
            match stored {
                Stored::New => new += 1,
                Stored::Duplicate => duplicates += 1,
                Stored::Refused(detail, full) => {
                    admission.reject(
                        index,
                        RejectReason::NotStored,
                        format!("the event log did not store it ({detail}); re-send it"),
                    );
                    failure.get_or_insert((detail, full));
                }
            }
        }
        metrics::appended(new);
        metrics::duplicates(duplicates);
        let accepted = new + duplicates;
        if let Some((detail, full)) = failure {
            metrics::rejected(RejectReason::NotStored, admission.rejected.len());
            if accepted == 0 {
                return Err(match full {
                    true => AppendError::Full(detail),
                    false => AppendError::Unavailable(detail),
                });
            }
        }
        admission.accepted += accepted as u32;
        admission.rejected.sort_by_key(|rejection| rejection.index);
        Ok(admission)
    }
}

/// A publish JetStream did not confirm: why, and whether the log is full.
fn refused(kind: PublishErrorKind, error: &dyn std::fmt::Display) -> Stored {
    let detail = error.to_string();
    let full = kind == PublishErrorKind::Other && detail.contains("maximum");
    Stored::Refused(detail, full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_per_workspace_and_safe_as_headers() {
        let id = message_id("acme", "e1");
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(id, message_id("acme", "e1"), "the same event, the same id");
        assert_ne!(id, message_id("globex", "e1"), "workspaces apart");
        assert_ne!(message_id("ab", "c"), message_id("a", "bc"), "no ambiguity");
        assert_eq!(message_id("a", "x\r\nNats-Msg-Id: y").len(), 32);
    }

    #[test]
    fn checks_refuse_what_the_memory_mode_refuses_and_fill_the_workspace() {
        let events = vec![
            r#"{"id":"e1","workspace_id":"acme","type":"t"}"#.to_owned(),
            "{nope".to_owned(),
            r#"{"id":"e2","type":"t"}"#.to_owned(),
            r#"{"id":"e3","workspace_id":"globex","type":"t"}"#.to_owned(),
        ];
        let (checked, admission) = check(events, Some("acme"), 1024);
        let indexes: Vec<_> = checked.iter().map(|c| c.index).collect();
        assert_eq!(indexes, [0, 2]);
        let filled: serde_json::Value = serde_json::from_slice(&checked[1].payload).expect("json");
        assert_eq!(filled["workspace_id"], "acme");
        let reasons: Vec<_> = admission
            .rejected
            .iter()
            .map(|r| (r.index, r.reason))
            .collect();
        assert_eq!(
            reasons,
            [
                (1, RejectReason::InvalidJson as i32),
                (3, RejectReason::WrongWorkspace as i32)
            ]
        );
    }
}
