//! Ingest in the durable mode: check each event, store the good ones in the
//! stream, and say which are stored only once JetStream has confirmed them.
//!
//! The events of one call are stored in as few messages as fit
//! ([`LoggedEvents`], at most [`MAX_CHUNK_EVENTS`] events and the server's
//! largest payload each): a JetStream message costs the server the same
//! whatever it holds, so this is what makes the log about as fast as the
//! memory. A message's id is a digest of its events' workspaces and ids, so
//! a batch re-sent as it was is stored once.

use std::fmt::Write as _;

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;
use eventconnectors_proto::v1::{LoggedEvents, RejectReason};
use futures::StreamExt;
use prost::Message as _;

use super::EventLog;
use crate::event;
use crate::metrics;
use crate::routing::Admission;

/// Most events in one message of the log.
pub const MAX_CHUNK_EVENTS: usize = 1000;

/// Room kept under the server's largest payload for the encoding.
const PAYLOAD_HEADROOM: usize = 4 * 1024;

/// Messages of one call awaiting confirmation at once.
const IN_FLIGHT: usize = 64;

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
    /// What identifies it for deduplication: its workspace and id.
    key: Vec<u8>,
    text: String,
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
                let key = key(event.workspace_id(), event.id());
                let text = if event.filled_workspace {
                    event.body.to_string()
                } else {
                    text
                };
                checked.push(Checked { index, key, text });
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

/// Event `id` of `workspace`, unambiguously (the workspace's length
/// first).
fn key(workspace: &str, id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + workspace.len() + id.len());
    key.extend_from_slice(&(workspace.len() as u64).to_le_bytes());
    key.extend_from_slice(workspace.as_bytes());
    key.extend_from_slice(id.as_bytes());
    key
}

/// The deduplication id of a message holding `events`: a digest, as
/// workspaces and ids are the producer's text (any length, any characters)
/// and a message id is a header value.
fn message_id(events: &[Checked]) -> String {
    let mut all = Vec::new();
    for event in events {
        all.extend_from_slice(&(event.key.len() as u64).to_le_bytes());
        all.extend_from_slice(&event.key);
    }
    let digest = server_kit::auth::digest(&all);
    let mut text = String::with_capacity(32);
    for byte in &digest[..16] {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// `checked` cut into messages of at most [`MAX_CHUNK_EVENTS`] events and
/// `max_bytes` of payload (an event larger than that alone in its own,
/// which the server will refuse).
fn chunks(checked: Vec<Checked>, max_bytes: usize) -> Vec<Vec<Checked>> {
    let mut chunks = Vec::new();
    let mut chunk: Vec<Checked> = Vec::new();
    let mut bytes = 0;
    for event in checked {
        // A string's share of the encoding: itself, its tag and length.
        let size = event.text.len() + 8;
        if !chunk.is_empty() && (chunk.len() == MAX_CHUNK_EVENTS || bytes + size > max_bytes) {
            chunks.push(std::mem::take(&mut chunk));
            bytes = 0;
        }
        bytes += size;
        chunk.push(event);
    }
    if !chunk.is_empty() {
        chunks.push(chunk);
    }
    chunks
}

/// What became of one message.
enum Stored {
    New,
    Duplicate,
    Refused(String, bool),
}

impl EventLog {
    /// Stores `checked` events and completes `admission`: each one is
    /// accepted once JetStream confirms its message, else refused
    /// NOT_STORED. `Err` when none could be stored.
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
        let max_bytes = connected
            .max_payload
            .saturating_sub(PAYLOAD_HEADROOM)
            .max(1);
        let results: Vec<(Vec<usize>, Stored)> = futures::stream::iter(chunks(checked, max_bytes))
            .map(|chunk| async move {
                let id = message_id(&chunk);
                let (indexes, events): (Vec<usize>, Vec<String>) =
                    chunk.into_iter().map(|c| (c.index, c.text)).unzip();
                let payload = Bytes::from(LoggedEvents { events }.encode_to_vec());
                let publish = PublishMessage::build().message_id(&id).payload(payload);
                let stored = match jetstream.send_publish(subject.clone(), publish).await {
                    Ok(confirmation) => match confirmation.await {
                        Ok(ack) if ack.duplicate => Stored::Duplicate,
                        Ok(_) => Stored::New,
                        Err(error) => refused(error.kind(), &error),
                    },
                    Err(error) => refused(error.kind(), &error),
                };
                (indexes, stored)
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        let (mut new, mut duplicates) = (0, 0);
        let mut failure: Option<(String, bool)> = None;
        for (indexes, stored) in results {
            match stored {
                Stored::New => new += indexes.len(),
                Stored::Duplicate => duplicates += indexes.len(),
                Stored::Refused(detail, full) => {
                    for index in indexes {
                        admission.reject(
                            index,
                            RejectReason::NotStored,
                            format!("the event log did not store it ({detail}); re-send it"),
                        );
                    }
                    failure.get_or_insert((detail, full));
                }
            }
        }
        metrics::appended(new);
        metrics::duplicates(duplicates);
        let accepted = new + duplicates;
        if let Some((detail, full)) = failure {
            let not_stored = admission
                .rejected
                .iter()
                .filter(|r| r.reason == RejectReason::NotStored as i32)
                .count();
            metrics::rejected(RejectReason::NotStored, not_stored);
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
    // JetStream's words for a stream at its limits (with discard new).
    let full = kind == PublishErrorKind::Other
        && (detail.contains("maximum bytes exceeded")
            || detail.contains("maximum messages exceeded"));
    Stored::Refused(detail, full)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(events: &[(&str, &str)]) -> Vec<Checked> {
        events
            .iter()
            .enumerate()
            .map(|(index, (workspace, id))| Checked {
                index,
                key: key(workspace, id),
                text: format!(r#"{{"id":"{id}","workspace_id":"{workspace}","type":"t"}}"#),
            })
            .collect()
    }

    #[test]
    fn message_ids_follow_the_events_and_are_safe_as_headers() {
        let id = message_id(&checked(&[("acme", "e1"), ("acme", "e2")]));
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(
            id,
            message_id(&checked(&[("acme", "e1"), ("acme", "e2")])),
            "the same batch, the same id"
        );
        assert_ne!(
            id,
            message_id(&checked(&[("globex", "e1"), ("globex", "e2")]))
        );
        assert_ne!(id, message_id(&checked(&[("acme", "e1")])));
        assert_ne!(
            message_id(&checked(&[("ab", "c")])),
            message_id(&checked(&[("a", "bc")])),
            "no ambiguity"
        );
        assert_eq!(
            message_id(&checked(&[("a", "x\r\nNats-Msg-Id: y")])).len(),
            32
        );
    }

    #[test]
    fn chunks_hold_at_most_the_events_and_bytes_allowed_and_keep_the_order() {
        let many: Vec<(String, String)> = (0..2500)
            .map(|n| ("w".to_owned(), format!("e{n}")))
            .collect();
        let pairs: Vec<(&str, &str)> = many.iter().map(|(w, e)| (w.as_str(), e.as_str())).collect();
        let by_count = chunks(checked(&pairs), usize::MAX);
        let sizes: Vec<usize> = by_count.iter().map(Vec::len).collect();
        assert_eq!(sizes, [1000, 1000, 500]);
        let order: Vec<usize> = by_count.iter().flatten().map(|c| c.index).collect();
        assert_eq!(order, (0..2500).collect::<Vec<_>>());
        let ten = checked(&pairs[..10]);
        let one = ten[0].text.len() + 8;
        let by_bytes = chunks(ten, one * 3);
        let sizes: Vec<usize> = by_bytes.iter().map(Vec::len).collect();
        assert_eq!(sizes, [3, 3, 3, 1]);
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
        let filled: serde_json::Value = serde_json::from_str(&checked[1].text).expect("json");
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
