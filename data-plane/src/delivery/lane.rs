//! A connector's lane on this node: its current configuration, compiled;
//! its queue, bounded by a count of events waiting or in flight; its breaker;
//! and the switch that stops it when it is deactivated or deleted (its
//! queued events are then dropped, and counted) or when the node shuts down.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use arc_swap::ArcSwap;
use eventconnectors_proto::v1::ConnectorConfig;
use partners::adapter::{Adapter, Prepared};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Breaker;
use crate::event::RawEvent;
use crate::outcomes::Receipt;
use partners::transform::{self, TransformError, Transformer};

/// An accepted event waiting for its connector.
#[derive(Debug)]
pub struct Queued {
    /// The event as the partner gets it.
    pub event: Prepared,
    /// When it was accepted (for latency).
    pub accepted_at: Instant,
    /// Durable mode: this connector's share of the event's receipt.
    pub receipt: Option<Receipt>,
}

/// The configuration a connector delivers by, compiled.
#[derive(Debug)]
pub struct Current {
    /// As the control plane sent it.
    pub config: Arc<ConnectorConfig>,
    /// Its mappings, compiled.
    pub transformer: Transformer,
}

impl Current {
    /// Whether the connector's filter lets `event` through.
    pub fn matches(&self, event: &RawEvent) -> bool {
        transform::matches(self.config.filter.as_ref(), event.event_type(), &event.body)
    }
}

/// Why a connector stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Deactivated or deleted: what is queued is DROPPED.
    Removed,
    /// The node shuts down: what is left is FAILED (OTHER).
    Shutdown,
    /// The node shuts down in the durable mode: what is left goes back to
    /// the log for another node, with no outcome here.
    HandBack,
}

/// What one queued event is counted as, besides its text: the queue
/// entry, the boxes' headers, the batch it joins.
const QUEUED_OVERHEAD_BYTES: usize = 256;

/// The bytes `event` holds while it waits or is in flight.
pub fn weight(event: &Prepared) -> usize {
    event.json.len() + event.group.len() + event.event_id.len() + QUEUED_OVERHEAD_BYTES
}

/// Which bound refused an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// The connector's queue (events).
    Connector,
    /// The node's queues (events or bytes).
    Node,
    /// The workspace's share of the node's bytes.
    Workspace,
}

/// Bytes held by queued events, against a capacity.
#[derive(Debug, Default)]
pub struct ByteBudget {
    used: AtomicUsize,
    capacity: usize,
}

impl ByteBudget {
    /// A budget of `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        Self {
            used: AtomicUsize::new(0),
            capacity,
        }
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    fn try_take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used + bytes <= self.capacity).then_some(used + bytes)
            })
            .is_ok()
    }

    fn give(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// Shared count of events, and of their bytes, waiting or in flight on the
/// node.
#[derive(Debug, Default)]
pub struct NodeDepth {
    used: AtomicUsize,
    capacity: usize,
    bytes: ByteBudget,
    freed: tokio::sync::Notify,
}

impl NodeDepth {
    /// A node taking at most `capacity` events and `bytes` bytes at once.
    pub fn new(capacity: usize, bytes: usize) -> Self {
        Self {
            used: AtomicUsize::new(0),
            capacity,
            bytes: ByteBudget::new(bytes),
            freed: tokio::sync::Notify::new(),
        }
    }

    /// Resolves after some room is given back (the durable mode waits for
    /// room instead of refusing).
    pub fn freed(&self) -> tokio::sync::futures::Notified<'_> {
        self.freed.notified()
    }

    /// Bytes of the events waiting or in flight.
    pub fn bytes(&self) -> usize {
        self.bytes.used()
    }

    /// Events waiting or in flight.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    fn try_take(&self, count: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used + count <= self.capacity).then_some(used + count)
            })
            .is_ok()
    }

    fn give(&self, count: usize) {
        self.used.fetch_sub(count, Ordering::AcqRel);
    }
}

/// A connector's delivery lane.
#[derive(Debug)]
pub struct Lane {
    /// Its id.
    pub id: String,
    /// Its partner's id.
    pub partner: &'static str,
    /// Its partner's wire format.
    pub adapter: &'static dyn Adapter,
    /// Most events per batch (the partner's limit).
    pub max_batch: usize,
    current: ArcSwap<Current>,
    queue: mpsc::UnboundedSender<Queued>,
    depth: AtomicUsize,
    capacity: usize,
    node: Arc<NodeDepth>,
    workspace: Arc<ByteBudget>,
    breaker: Mutex<Breaker>,
    stop: CancellationToken,
    reason: AtomicU8,
}

impl Lane {
    /// A lane for `config` and the receiving end of its queue; `None` when
    /// the node does not know the partner or cannot compile the mappings
    /// (the snapshot has checked both already).
    pub fn new(
        config: Arc<ConnectorConfig>,
        capacity: usize,
        node: Arc<NodeDepth>,
        workspace: Arc<ByteBudget>,
        breaker: Breaker,
    ) -> Option<(Arc<Self>, mpsc::UnboundedReceiver<Queued>)> {
        let spec = partners::partner(&config.partner)?;
        let transformer = Transformer::new(&config).ok()?;
        let (queue, receiver) = mpsc::unbounded_channel();
        let connector = Self {
            id: config.id.clone(),
            partner: spec.id,
            adapter: spec.adapter,
            max_batch: spec.max_batch_size.max(1) as usize,
            current: ArcSwap::from_pointee(Current {
                config,
                transformer,
            }),
            queue,
            depth: AtomicUsize::new(0),
            capacity,
            node,
            workspace,
            breaker: Mutex::new(breaker),
            stop: CancellationToken::new(),
            reason: AtomicU8::new(0),
        };
        Some((Arc::new(connector), receiver))
    }

    /// The configuration now.
    pub fn current(&self) -> arc_swap::Guard<Arc<Current>> {
        self.current.load()
    }

    /// Switches to a new configuration of the same connector; queued events
    /// keep the form they were accepted in. `false` if it does not compile.
    pub fn update(&self, config: Arc<ConnectorConfig>) -> bool {
        let Ok(transformer) = Transformer::new(&config) else {
            return false;
        };
        self.current.store(Arc::new(Current {
            config,
            transformer,
        }));
        true
    }

    /// `event` as this connector's partner gets it under `current`; `text`
    /// is the event as it came, taken (not copied) when the connector
    /// forwards it raw.
    pub fn prepare(
        &self,
        current: &Current,
        event: &RawEvent,
        text: &mut String,
    ) -> Result<Prepared, TransformError> {
        if current.transformer.forwards_raw() {
            return Ok(Prepared::raw(event.id(), std::mem::take(text)));
        }
        let fields = current.transformer.apply(&event.body)?;
        Ok(self.adapter.prepare(&current.config, event.id(), fields))
    }

    /// Takes room for one event of `bytes` on this connector, on the node
    /// and in its workspace's share; the bound that refused it (and
    /// nothing taken) when one is full.
    pub fn try_reserve(&self, bytes: usize) -> Result<(), Full> {
        self.depth
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |depth| {
                (depth < self.capacity).then_some(depth + 1)
            })
            .map_err(|_| Full::Connector)?;
        if !self.node.try_take(1) {
            self.depth.fetch_sub(1, Ordering::AcqRel);
            return Err(Full::Node);
        }
        if !self.node.bytes.try_take(bytes) {
            self.node.give(1);
            self.depth.fetch_sub(1, Ordering::AcqRel);
            return Err(Full::Node);
        }
        if !self.workspace.try_take(bytes) {
            self.node.bytes.give(bytes);
            self.node.give(1);
            self.depth.fetch_sub(1, Ordering::AcqRel);
            return Err(Full::Workspace);
        }
        Ok(())
    }

    /// Gives back the room of `count` events of `bytes` in all that have
    /// their outcome.
    pub fn release(&self, count: usize, bytes: usize) {
        self.depth.fetch_sub(count, Ordering::AcqRel);
        self.node.give(count);
        self.node.bytes.give(bytes);
        self.workspace.give(bytes);
        self.node.freed.notify_waiters();
    }

    /// Events waiting or in flight.
    pub fn depth(&self) -> usize {
        self.depth.load(Ordering::Acquire)
    }

    /// Queues a reserved event; `Err` gives it back when the connector has
    /// stopped meanwhile.
    pub fn enqueue(&self, queued: Queued) -> Result<(), Queued> {
        self.queue.send(queued).map_err(|error| error.0)
    }

    /// The breaker.
    pub fn breaker(&self) -> MutexGuard<'_, Breaker> {
        self.breaker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Stops the lane; the first reason given wins.
    pub fn stop(&self, reason: StopReason) {
        let code = match reason {
            StopReason::Removed => 1,
            StopReason::Shutdown => 2,
            StopReason::HandBack => 3,
        };
        let _ = self
            .reason
            .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire);
        self.stop.cancel();
    }

    /// Why the lane stopped, once it has.
    pub fn stopped_by(&self) -> Option<StopReason> {
        match self.reason.load(Ordering::Acquire) {
            1 => Some(StopReason::Removed),
            2 => Some(StopReason::Shutdown),
            3 => Some(StopReason::HandBack),
            _ => None,
        }
    }

    /// Resolves when the lane is stopped.
    pub async fn stopped(&self) {
        self.stop.cancelled().await;
    }
}
