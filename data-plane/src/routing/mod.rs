//! Routing: which connectors an event goes to. The dispatcher follows the
//! configuration (a delivery lane per ACTIVE connector, each workspace's
//! lanes in a list swapped atomically), admits events into the lanes, and
//! stops lanes when their connector goes or the node shuts down.

mod admit;
mod sync;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::delivery::{Lane, NodeDepth, SharedDelivery, StopReason};
pub use admit::Admission;

/// Each workspace's lanes.
type Routes = imbl::HashMap<String, Arc<[Arc<Lane>]>>;

/// Whether the node takes events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intake {
    /// No configuration yet.
    Starting,
    /// Taking events.
    Open,
    /// Shutting down.
    Closed,
}

/// Limits on what is admitted.
#[derive(Debug, Clone, Copy)]
pub struct AdmitLimits {
    /// Largest event in bytes.
    pub max_event_bytes: usize,
    /// Events waiting or in flight per connector.
    pub connector_capacity: usize,
}

/// The node's routing and lanes.
#[derive(Debug)]
pub struct Dispatcher {
    routes: ArcSwap<Routes>,
    lanes: Mutex<HashMap<String, Arc<Lane>>>,
    node: Arc<NodeDepth>,
    limits: AdmitLimits,
    delivery: SharedDelivery,
    intake: AtomicU8,
    closed: tokio_util::sync::CancellationToken,
}

impl Dispatcher {
    /// A dispatcher with no lanes; intake opens with the first
    /// configuration.
    pub fn new(limits: AdmitLimits, node_capacity: usize, delivery: SharedDelivery) -> Self {
        Self {
            routes: ArcSwap::from_pointee(Routes::new()),
            lanes: Mutex::new(HashMap::new()),
            node: Arc::new(NodeDepth::new(node_capacity)),
            limits,
            delivery,
            intake: AtomicU8::new(0),
            closed: tokio_util::sync::CancellationToken::new(),
        }
    }

    /// Whether events are taken now.
    pub fn intake(&self) -> Intake {
        match self.intake.load(Ordering::Acquire) {
            0 => Intake::Starting,
            1 => Intake::Open,
            _ => Intake::Closed,
        }
    }

    /// Stops taking events (shutdown).
    pub fn close_intake(&self) {
        self.intake.store(2, Ordering::Release);
        self.closed.cancel();
    }

    /// Resolves once intake is closed (ingest streams then end).
    pub async fn intake_closed(&self) {
        self.closed.cancelled().await;
    }

    /// Events waiting or in flight on the node.
    pub fn depth(&self) -> usize {
        self.node.used()
    }

    /// Every lane.
    pub fn lanes(&self) -> Vec<Arc<Lane>> {
        self.lanes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Shutdown: waits up to `grace` for queued events to be delivered,
    /// then ends what is left as FAILED (shutdown) and waits for the
    /// delivery tasks to finish their outcomes.
    pub async fn drain(&self, grace: Duration) {
        self.close_intake();
        let deadline = tokio::time::Instant::now() + grace;
        while self.depth() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let left = self.depth();
        if left > 0 {
            tracing::warn!(
                left,
                "grace period over: undelivered events end as FAILED (shutdown)"
            );
        }
        for lane in self.lanes() {
            lane.stop(StopReason::Shutdown);
        }
        self.delivery.tasks.close();
        self.delivery.tasks.wait().await;
    }
}
