//! Delivery from the log. Two loops: the puller asks the shared consumer
//! for as many events as the node has room for and takes each one into
//! the ledger as it arrives (from then on the node signals progress for
//! it); the admitter queues them on their connectors, waiting for room. On
//! stop the puller ends its last pull and both give back what they hold
//! and have not queued.

use std::time::Duration;

use eventconnectors_proto::v1::LoggedEvents;
use futures::StreamExt;
use prost::Message as _;
use server_kit::backoff::{Attempts, Backoff};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::append::MAX_CHUNK_EVENTS;
use super::{Connected, EventLog};
use crate::outcomes::Receipt;
use crate::routing::{Dispatcher, Intake};

/// Most messages asked for in one pull.
const MAX_PULL: usize = 256;

/// How long one pull waits for events (and so the longest a stop waits
/// for the pull in progress).
const PULL_WAIT: Duration = Duration::from_millis(500);

/// Pulls and queues events until `stop`.
pub(super) async fn consume(
    log: &EventLog,
    connected: &Connected,
    dispatcher: &Dispatcher,
    stop: &CancellationToken,
) {
    // Routing needs the connectors: nothing is taken before the first
    // configuration.
    while dispatcher.intake() == Intake::Starting {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
    let (taken, mut to_admit) = mpsc::unbounded_channel::<(Vec<String>, Receipt)>();
    let admitter = async {
        while let Some((events, receipt)) = to_admit.recv().await {
            if stop.is_cancelled() {
                receipt.give_back();
                continue;
            }
            dispatcher
                .admit_logged(events, receipt, log.flags.max_deliveries, stop)
                .await;
        }
    };
    tokio::join!(pull(log, connected, taken, stop), admitter);
}

/// The puller: ends (dropping `taken`) once `stop` fires and its last pull
/// is over.
async fn pull(
    log: &EventLog,
    connected: &Connected,
    taken: mpsc::UnboundedSender<(Vec<String>, Receipt)>,
    stop: &CancellationToken,
) {
    let mut backoff = Attempts::new(Backoff::new(
        Duration::from_millis(50),
        Duration::from_secs(2),
    ));
    while !stop.is_cancelled() {
        // Room for a full message first, so what a pull brings never
        // waits for room.
        let wanted = MAX_CHUNK_EVENTS.min(log.ledger.capacity());
        if log.ledger.room() < wanted {
            tokio::select! {
                () = stop.cancelled() => break,
                () = log.ledger.wait_for_room(wanted) => {}
            }
        }
        let room = log.ledger.room();
        let pulled = connected
            .consumer
            .batch()
            // A message holds up to a thousand events: ask for what the
            // room may take (at least one, which then waits for room).
            .max_messages((room / MAX_CHUNK_EVENTS).clamp(1, MAX_PULL))
            .expires(PULL_WAIT)
            .messages()
            .await;
        let mut messages = match pulled {
            Ok(messages) => messages,
            Err(error) => {
                tracing::warn!(%error, "cannot pull from the event log; retrying");
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(backoff.next_delay()) => {}
                }
                continue;
            }
        };
        // The pull ends when it has its events or after PULL_WAIT, so a
        // stop waits at most that long; what comes meanwhile is given back.
        while let Some(message) = messages.next().await {
            let message = match message {
                Ok(message) => message,
                Err(error) => {
                    tracing::debug!(%error, "event log pull ended early");
                    break;
                }
            };
            backoff.reset();
            let (sequence, delivered) = match message.info() {
                Ok(info) => (info.stream_sequence, info.delivered.max(1) as u64),
                Err(error) => {
                    tracing::warn!(%error, "a message without JetStream metadata on the event log consumer: refused for good");
                    let _ = message.ack_with(async_nats::jetstream::AckKind::Term).await;
                    continue;
                }
            };
            let async_nats::Message { reply, payload, .. } = message.message;
            let Some(reply) = reply else { continue };
            let events = LoggedEvents::decode(payload).map(|logged| logged.events);
            let count = events.as_ref().map_or(1, Vec::len);
            let Some(receipt) = log
                .ledger
                .take(sequence, reply, delivered, count, stop)
                .await
            else {
                continue;
            };
            if stop.is_cancelled() {
                receipt.give_back();
                continue;
            }
            match events {
                Ok(events) => {
                    let _ = taken.send((events, receipt));
                }
                Err(error) => {
                    tracing::error!(
                        sequence,
                        %error,
                        "the event log holds a message no node wrote: removed"
                    );
                    receipt.terminate();
                }
            }
        }
    }
}
