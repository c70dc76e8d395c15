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
    /// With lanes: the version they apply now (acknowledgements wait for
    /// it).
    synced: Option<Arc<watch::Sender<u64>>>,
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
            synced: None,
            link: Arc::new(watch::channel(Link::default()).0),
        }
    }

    /// The same state for a node with lanes: a version is acknowledged to
    /// the control plane only once [`ConfigState::mark_synced`] says the
    /// lanes apply it, so `ListNodes` never shows a node current while a
    /// deleted connector still receives data there.
    pub fn acknowledged_after_sync(mut self) -> Self {
        self.synced = Some(Arc::new(watch::channel(0).0));
        self
    }

    /// The lanes apply `version` now.
    pub fn mark_synced(&self, version: u64) {
        if let Some(synced) = &self.synced {
            synced.send_if_modified(|current| {
                let newer = version > *current;
                if newer {
                    *current = version;
                }
                newer
            });
        }
    }

    /// Resolves once `version` may be acknowledged: at once without lanes,
    /// else when the lanes apply it (or a later one).
    pub(super) async fn synced(&self, version: u64) {
        if let Some(synced) = &self.synced {
            let _ = synced
                .subscribe()
                .wait_for(|synced| *synced >= version)
                .await;
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_node_acknowledges_a_version_once_its_lanes_apply_it() {
        let state = ConfigState::new().acknowledged_after_sync();
        let waiting = tokio::time::timeout(Duration::from_millis(50), state.synced(3));
        assert!(waiting.await.is_err(), "stored is not applied");
        state.mark_synced(2);
        let waiting = tokio::time::timeout(Duration::from_millis(50), state.synced(3));
        assert!(waiting.await.is_err(), "an older version is not enough");
        state.mark_synced(5);
        tokio::time::timeout(Duration::from_millis(50), state.synced(3))
            .await
            .expect("a later version covers it");
        state.mark_synced(4);
        tokio::time::timeout(Duration::from_millis(50), state.synced(5))
            .await
            .expect("never goes back");

        let without_lanes = ConfigState::new();
        tokio::time::timeout(Duration::from_millis(50), without_lanes.synced(9))
            .await
            .expect("without lanes, stored is enough");
    }
}
