//! The node's view of the configuration: the last good snapshot, swapped
//! atomically so the event path reads it without a lock, and the client that
//! keeps it current from the control plane.

mod client;
mod snapshot;

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use eventconnectors_proto::v1::{ConfigUpdate, ConnectorRejection};
use tokio::sync::watch;

pub use client::{WatchSettings, watch_config};
pub use snapshot::Snapshot;

/// The configuration this node delivers by.
#[derive(Debug, Clone)]
pub struct ConfigState {
    current: Arc<ArcSwapOption<Snapshot>>,
    applied: Arc<watch::Sender<Option<u64>>>,
}

impl Default for ConfigState {
    fn default() -> Self {
        Self::new()
    }
}

impl ConfigState {
    /// No configuration yet: the node is not ready.
    pub fn new() -> Self {
        Self {
            current: Arc::new(ArcSwapOption::empty()),
            applied: Arc::new(watch::channel(None).0),
        }
    }

    /// The current snapshot; `None` until the first one arrived.
    pub fn current(&self) -> Option<Arc<Snapshot>> {
        self.current.load_full()
    }

    /// The applied version, changing with every update (`None` before the
    /// first snapshot).
    pub fn applied(&self) -> watch::Receiver<Option<u64>> {
        self.applied.subscribe()
    }

    /// Applies `update` atomically: readers see the previous snapshot or the
    /// next, never half of it. Returns what could not be applied.
    pub fn apply(&self, update: ConfigUpdate) -> Vec<ConnectorRejection> {
        let previous = self.current().unwrap_or_default();
        let (next, rejections) = previous.apply(update);
        let version = next.version();
        self.current.store(Some(Arc::new(next)));
        self.applied.send_replace(Some(version));
        rejections
    }
}
