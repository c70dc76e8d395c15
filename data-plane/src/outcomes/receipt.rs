//! Receipts for events taken from the durable log (see [`crate::event_log`]).
//!
//! A node holds a JetStream message until the event it carries has its
//! final outcome on every matching connector. Each of those connectors
//! holds a share of the event's [`Receipt`]; the router holds one more
//! while it hands the shares out, so no connector can end the event before
//! all have it. When the last share ends, the event is either
//! - acknowledged (`+ACK`, the message leaves the log), once the stats
//!   service has acknowledged the outcomes counted for it. Its events'
//!   outcomes are held on the receipt until then and counted all at once
//!   when it ends, so a node killed before has counted none of them (the
//!   next node counts them once), never some twice; or
//! - given back (`-NAK`, JetStream hands it to another node at once) when a
//!   connector could not finish it here: the node is shutting down.
//!
//! The [`Ledger`] lists the messages the node holds. Its signaller sends
//! the acknowledgements and, every third of the ack wait, a progress signal
//! (`+WPI`) for every message still held, so long retries and a queue
//! behind a slow partner do not make JetStream redeliver; a node that dies
//! stops signalling, and its messages go to the other nodes after the ack
//! wait. The ledger also bounds how many messages the node holds.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_nats::Subject;
use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::OutcomeKey;
use crate::metrics;

/// JetStream's answers to a delivered message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Done: the message leaves the log.
    Ack,
    /// Give it to another node now.
    Nak,
    /// Still working on it: restart the ack wait.
    Progress,
    /// Never deliver it again (it cannot be an event).
    Term,
}

impl Signal {
    fn payload(self) -> Bytes {
        Bytes::from_static(match self {
            Self::Ack => b"+ACK",
            Self::Nak => b"-NAK",
            Self::Progress => b"+WPI",
            Self::Term => b"+TERM",
        })
    }
}

/// Messages remembered as ended (acknowledged or terminated) after they
/// leave the ledger: a redelivery of one (its acknowledgement was lost,
/// NATS restarted) is acknowledged again instead of sent and counted twice.
const REMEMBERED_ENDS: usize = 65_536;

/// The last [`REMEMBERED_ENDS`] messages this node ended, by sequence.
#[derive(Debug, Default)]
struct Ended {
    order: std::collections::VecDeque<u64>,
    set: std::collections::HashSet<u64>,
}

impl Ended {
    fn remember(&mut self, sequence: u64) {
        if !self.set.insert(sequence) {
            return;
        }
        self.order.push_back(sequence);
        if self.order.len() > REMEMBERED_ENDS
            && let Some(oldest) = self.order.pop_front()
        {
            self.set.remove(&oldest);
        }
    }
}

/// The messages a node holds, by stream sequence, bounded by the events
/// they carry.
#[derive(Debug)]
pub struct Ledger {
    held: Mutex<HashMap<u64, Subject>>,
    ended: Mutex<Ended>,
    given_back: std::sync::atomic::AtomicU64,
    capacity: usize,
    permits: Arc<Semaphore>,
    signals: mpsc::UnboundedSender<(Subject, Signal)>,
}

/// The receiving end of a ledger's signals, for [`send_signals`].
pub type Signals = mpsc::UnboundedReceiver<(Subject, Signal)>;

impl Ledger {
    /// A ledger holding messages of at most `capacity` events in all.
    pub fn new(capacity: usize) -> (Arc<Self>, Signals) {
        let (signals, receiver) = mpsc::unbounded_channel();
        let ledger = Self {
            held: Mutex::new(HashMap::new()),
            ended: Mutex::default(),
            given_back: std::sync::atomic::AtomicU64::new(0),
            capacity: capacity.clamp(1, Semaphore::MAX_PERMITS),
            permits: Arc::new(Semaphore::new(capacity.clamp(1, Semaphore::MAX_PERMITS))),
            signals,
        };
        (Arc::new(ledger), receiver)
    }

    fn held(&self) -> MutexGuard<'_, HashMap<u64, Subject>> {
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn ended_lock(&self) -> MutexGuard<'_, Ended> {
        self.ended
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Messages held now.
    pub fn len(&self) -> usize {
        self.held().len()
    }

    /// Whether no message is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Messages given back to the log since start.
    pub fn given_back(&self) -> u64 {
        self.given_back.load(Ordering::Acquire)
    }

    /// How many more events may be taken now.
    pub fn room(&self) -> usize {
        self.permits.available_permits()
    }

    /// Waits until there is room for `events` more events (at most the
    /// capacity).
    pub async fn wait_for_room(&self, events: usize) {
        let wanted = events.clamp(1, self.capacity) as u32;
        if let Ok(permit) = self.permits.acquire_many(wanted).await {
            drop(permit);
        }
    }

    /// Most events the node may hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Takes the message at `sequence` holding `events` events, answered
    /// on `reply`, delivered `delivered` times so far (this one included);
    /// waits for room.
    ///
    /// `None` when the node holds that message already (JetStream
    /// redelivered it here, its progress signals lost): the hold moves to
    /// the new delivery and the copy is dropped. `None` when it ended the
    /// message already (its acknowledgement was lost): it is acknowledged
    /// again. `None` too when `stop` fires while it waits: the message goes
    /// back.
    pub async fn take(
        self: &Arc<Self>,
        sequence: u64,
        reply: Subject,
        delivered: u64,
        events: usize,
        stop: &CancellationToken,
    ) -> Option<Receipt> {
        if self.ended_lock().set.contains(&sequence) {
            tracing::debug!(
                sequence,
                "redelivered after this node ended it (its acknowledgement was lost): acknowledged again"
            );
            metrics::reacknowledged(events);
            let _ = self.signals.send((reply, Signal::Ack));
            return None;
        }
        if let Some(held) = self.held().insert(sequence, reply) {
            tracing::debug!(sequence, previous = %held, "redelivered to the node holding it: the copy is dropped");
            return None;
        }
        // Held (so signalled in progress) while it waits for room.
        let weight = events.clamp(1, self.capacity) as u32;
        let permit = tokio::select! {
            permit = Arc::clone(&self.permits).acquire_many_owned(weight) => {
                permit.expect("the ledger's semaphore is never closed")
            }
            () = stop.cancelled() => {
                self.end(sequence, Signal::Nak);
                return None;
            }
        };
        Some(Receipt(Arc::new(Inner {
            sequence,
            delivered,
            shares: AtomicUsize::new(1),
            handed_back: AtomicBool::new(false),
            outcomes: Mutex::new(Vec::new()),
            ledger: Arc::clone(self),
            _permit: permit,
        })))
    }

    /// Ends message `sequence` with `signal`, once (later calls do
    /// nothing and return `false`).
    fn end(&self, sequence: u64, signal: Signal) -> bool {
        let Some(reply) = self.held().remove(&sequence) else {
            return false;
        };
        match signal {
            Signal::Nak => {
                self.given_back.fetch_add(1, Ordering::AcqRel);
            }
            Signal::Ack | Signal::Term => self.ended_lock().remember(sequence),
            Signal::Progress => {}
        }
        let _ = self.signals.send((reply, signal));
        true
    }

    /// Gives every message still held back to the log (the last step of
    /// a shutdown); returns how many.
    pub fn give_back_all(&self) -> usize {
        let held: Vec<_> = self.held().drain().collect();
        self.given_back
            .fetch_add(held.len() as u64, Ordering::AcqRel);
        for (_, reply) in &held {
            let _ = self.signals.send((reply.clone(), Signal::Nak));
        }
        metrics::handed_back(held.len());
        held.len()
    }
}

/// Sends `signals` to JetStream through `client`, and a progress signal
/// for every message `ledger` holds every `heartbeat`, until `stop` is
/// cancelled; then sends what is left and flushes.
pub async fn send_signals(
    client: async_nats::Client,
    ledger: Arc<Ledger>,
    mut signals: Signals,
    heartbeat: Duration,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            biased;
            next = signals.recv() => match next {
                Some((reply, signal)) => publish(&client, reply, signal).await,
                None => break,
            },
            _ = tick.tick() => {
                let held: Vec<Subject> = ledger.held().values().cloned().collect();
                for reply in held {
                    publish(&client, reply, Signal::Progress).await;
                }
            }
            () = stop.cancelled() => break,
        }
    }
    while let Ok((reply, signal)) = signals.try_recv() {
        publish(&client, reply, signal).await;
    }
    if let Err(error) = client.flush().await {
        tracing::warn!(%error, "could not flush the last acknowledgements to the event log");
    }
}

async fn publish(client: &async_nats::Client, reply: Subject, signal: Signal) {
    // A signal lost with the connection is answered by JetStream itself:
    // the message is redelivered after the ack wait.
    if let Err(error) = client.publish(reply, signal.payload()).await {
        tracing::debug!(%error, ?signal, "event log signal not sent");
    }
}

/// A node's hold on one message of the durable log, shared by the
/// connectors the event goes to.
#[derive(Debug, Clone)]
pub struct Receipt(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    sequence: u64,
    delivered: u64,
    shares: AtomicUsize,
    handed_back: AtomicBool,
    /// Outcomes of its events, counted when the message ends.
    outcomes: Mutex<Vec<(OutcomeKey, u64, String)>>,
    ledger: Arc<Ledger>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Inner {
    /// A message whose receipt is gone without an answer (a delivery task
    /// that panicked) goes back to the log rather than being held, and
    /// signalled in progress, for the node's life.
    fn drop(&mut self) {
        if self.ledger.end(self.sequence, Signal::Nak) {
            tracing::warn!(
                sequence = self.sequence,
                "a message left without an outcome: given back"
            );
        }
    }
}

impl Receipt {
    /// The message's sequence in the stream.
    pub fn sequence(&self) -> u64 {
        self.0.sequence
    }

    /// How many times JetStream has delivered the message (this time
    /// included).
    pub fn delivered(&self) -> u64 {
        self.0.delivered
    }

    /// Adds `count` shares (one per connector the event goes to).
    pub fn add_shares(&self, count: usize) {
        self.0.shares.fetch_add(count, Ordering::AcqRel);
    }

    /// Ends one share; `true` when it was the last.
    pub fn end_share(&self) -> bool {
        self.0.shares.fetch_sub(1, Ordering::AcqRel) == 1
    }

    /// The event goes back to the log at its last share instead of being
    /// acknowledged.
    pub fn mark_handed_back(&self) {
        self.0.handed_back.store(true, Ordering::Release);
    }

    /// Whether a connector handed the event back.
    pub fn handed_back(&self) -> bool {
        self.0.handed_back.load(Ordering::Acquire)
    }

    /// Keeps `count` outcomes `key` (with `sample`) of the message's events
    /// until it ends.
    pub fn hold(&self, key: OutcomeKey, count: u64, sample: &str) {
        self.0
            .outcomes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push((key, count, sample.to_owned()));
    }

    /// The outcomes held, taken.
    pub fn take_outcomes(&self) -> Vec<(OutcomeKey, u64, String)> {
        std::mem::take(
            &mut *self
                .0
                .outcomes
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }

    /// Done: the message leaves the log.
    pub fn acknowledge(&self) {
        self.0.ledger.end(self.0.sequence, Signal::Ack);
    }

    /// Back to the log, for another node now.
    pub fn give_back(&self) {
        if self.0.ledger.end(self.0.sequence, Signal::Nak) {
            metrics::handed_back(1);
        }
    }

    /// Never to be delivered again (not an event).
    pub fn terminate(&self) {
        self.0.ledger.end(self.0.sequence, Signal::Term);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(sequence: u64) -> Subject {
        Subject::from(format!("$JS.ACK.S.C.1.{sequence}.{sequence}.0.0"))
    }

    #[tokio::test]
    async fn a_message_ends_once_with_the_first_signal() {
        let (ledger, mut signals) = Ledger::new(2);
        let stop = CancellationToken::new();
        let receipt = ledger
            .take(7, subject(7), 1, 1, &stop)
            .await
            .expect("taken");
        assert_eq!((ledger.len(), ledger.room()), (1, 1));
        receipt.add_shares(2);
        assert!(!receipt.end_share(), "the router's share");
        assert!(!receipt.end_share());
        assert!(receipt.end_share(), "the last connector's share");
        receipt.acknowledge();
        receipt.give_back();
        assert_eq!(
            signals.try_recv().expect("one signal"),
            (subject(7), Signal::Ack)
        );
        assert!(signals.try_recv().is_err(), "a message ends once");
        assert_eq!(ledger.len(), 0);
        drop(receipt);
        assert_eq!(ledger.room(), 2, "room comes back with the last share");
    }

    #[tokio::test]
    async fn the_ledger_bounds_what_a_node_holds_and_gives_back_the_rest() {
        let (ledger, mut signals) = Ledger::new(5);
        let stop = CancellationToken::new();
        let first = ledger
            .take(1, subject(1), 1, 5, &stop)
            .await
            .expect("taken");
        let waiting = tokio::time::timeout(
            Duration::from_millis(50),
            ledger.take(2, subject(2), 1, 1, &stop),
        );
        assert!(waiting.await.is_err(), "no room for a second message");
        assert_eq!(ledger.len(), 2, "the waiting one is held, so signalled");
        let again = ledger.take(1, subject(11), 2, 5, &stop).await;
        assert!(again.is_none(), "a redelivery of a held message is dropped");
        stop.cancel();
        assert!(ledger.take(3, subject(3), 1, 1, &stop).await.is_none());
        assert_eq!(signals.try_recv().expect("nak"), (subject(3), Signal::Nak));
        assert_eq!(ledger.give_back_all(), 2);
        let mut given_back: Vec<_> = [signals.try_recv(), signals.try_recv()]
            .into_iter()
            .map(|signal| signal.expect("nak").0)
            .collect();
        given_back.sort_by_key(|s| s.to_string());
        assert_eq!(
            given_back,
            [subject(11), subject(2)],
            "the latest delivery's reply"
        );
        first.acknowledge();
        assert!(signals.try_recv().is_err(), "given back already");
        drop(first);
        assert!(
            signals.try_recv().is_err(),
            "dropping an ended receipt says nothing"
        );
    }

    #[tokio::test]
    async fn a_message_redelivered_after_it_ended_is_acknowledged_again_not_taken() {
        let (ledger, mut signals) = Ledger::new(5);
        let stop = CancellationToken::new();
        let receipt = ledger
            .take(9, subject(9), 1, 1, &stop)
            .await
            .expect("taken");
        receipt.acknowledge();
        assert_eq!(signals.try_recv().expect("ack"), (subject(9), Signal::Ack));
        drop(receipt);
        // The acknowledgement was lost: JetStream delivers it again.
        assert!(ledger.take(9, subject(19), 2, 1, &stop).await.is_none());
        assert_eq!(
            signals.try_recv().expect("acknowledged again"),
            (subject(19), Signal::Ack)
        );
        assert!(ledger.is_empty(), "not held, not sent again");
        // A message given back is another node's (or this one's) to take.
        let back = ledger
            .take(10, subject(10), 1, 1, &stop)
            .await
            .expect("taken");
        back.give_back();
        assert!(ledger.take(10, subject(20), 2, 1, &stop).await.is_some());
    }

    #[tokio::test]
    async fn a_receipt_dropped_without_an_answer_gives_its_message_back() {
        let (ledger, mut signals) = Ledger::new(5);
        let stop = CancellationToken::new();
        let receipt = ledger
            .take(4, subject(4), 1, 1, &stop)
            .await
            .expect("taken");
        drop(receipt);
        assert_eq!(signals.try_recv().expect("nak"), (subject(4), Signal::Nak));
        assert!(ledger.is_empty());
    }
}
