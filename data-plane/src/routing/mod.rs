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

use crate::delivery::{ByteBudget, Lane, NodeDepth, SharedDelivery, StopReason};
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
    /// Bytes of events waiting or in flight on the node.
    pub node_bytes: usize,
    /// Bytes one workspace's events may hold on the node.
    pub workspace_bytes: usize,
}

/// The node's routing and lanes.
#[derive(Debug)]
pub struct Dispatcher {
    routes: ArcSwap<Routes>,
    lanes: Mutex<HashMap<String, Arc<Lane>>>,
    node: Arc<NodeDepth>,
    /// Each workspace's share of the node's bytes (kept for the node's
    /// life: a workspace's entry is a few dozen bytes).
    workspaces: Mutex<HashMap<String, Arc<ByteBudget>>>,
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
            node: Arc::new(NodeDepth::new(node_capacity, limits.node_bytes)),
            workspaces: Mutex::new(HashMap::new()),
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

    /// Bytes of the events waiting or in flight on the node.
    pub fn depth_bytes(&self) -> usize {
        self.node.bytes()
    }

    /// The share of the node's bytes `workspace`'s events draw from.
    fn workspace_budget(&self, workspace: &str) -> Arc<ByteBudget> {
        let mut workspaces = self
            .workspaces
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Arc::clone(
            workspaces
                .entry(workspace.to_owned())
                .or_insert_with(|| Arc::new(ByteBudget::new(self.limits.workspace_bytes))),
        )
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

    /// Shutdown in the durable mode: every lane stops at once and hands
    /// what it has not sent back to the log; requests in flight finish
    /// (no retry starts), for up to `grace`.
    pub async fn hand_back(&self, grace: Duration) {
        self.close_intake();
        for lane in self.lanes() {
            lane.stop(StopReason::HandBack);
        }
        self.delivery.tasks.close();
        if tokio::time::timeout(grace, self.delivery.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "grace period over with requests in flight: their events go back to the log"
            );
        }
    }
}
