//! The node's view of the configuration: the last good snapshot, swapped
//! atomically so the event path reads it without a lock, and the client that
//! keeps it current from the control plane.

mod client;
mod snapshot;

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use eventconnectors_proto::v1::{ConfigUpdate, ConnectorRejection};
use tokio::sync::watch;

use crate::metrics;

pub use client::{WatchSettings, watch_config};
pub use snapshot::Snapshot;

/// How the node stands with the control plane.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Link {
    /// A configuration stream is open.
    pub connected: bool,
    /// Streams that ended, or could not be opened, since the node started.
    pub sessions_ended: u64,
}

/// The configuration this node delivers by.
#[derive(Debug, Clone)]
pub struct ConfigState {
    current: Arc<ArcSwapOption<Snapshot>>,
    applied: Arc<watch::Sender<Option<u64>>>,
    link: Arc<watch::Sender<Link>>,
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
            link: Arc::new(watch::channel(Link::default()).0),
        }
    }

    /// The link to the control plane, changing as streams open and end.
    pub fn link(&self) -> watch::Receiver<Link> {
        self.link.subscribe()
    }

    /// A stream is open (`true`), or one ended or failed (`false`).
    pub(super) fn set_connected(&self, connected: bool) {
        self.link.send_modify(|link| {
            if !connected {
                link.sessions_ended += 1;
            }
            link.connected = connected;
        });
        metrics::config_connected(connected);
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
