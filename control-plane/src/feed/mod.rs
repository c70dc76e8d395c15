//! The configuration feed: each replica learns of new versions (its own
//! commits directly, other replicas' through Postgres NOTIFY, and a periodic
//! poll as the safety net), reads each change once, and fans it out to every
//! node stream it serves.

mod outage;
mod publisher;
mod registry;
mod service;
mod update;

use std::sync::Arc;
use std::time::Duration;

use eventconnectors_proto::shared::EncodedConfigUpdate;
use tokio::sync::broadcast;

pub use outage::Outage;
use outage::StoreHealth;
pub use registry::NodeRegistry;
pub use service::{ConfigApi, FeedAuth, FeedGate};
pub use update::View;
use update::Views;

use crate::secrets::SecretBox;
use crate::store::{FeedPosition, Store, StoreError};

/// Changes kept for streams that are briefly behind; a stream further behind
/// catches up from the database instead.
const FANOUT_CAPACITY: usize = 1024;

/// How the feed learns of new versions.
#[derive(Debug, Clone)]
pub struct FeedSettings {
    /// Database URL, for the NOTIFY listener (Postgres only).
    pub database_url: server_kit::auth::Secret,
    /// Listen for other replicas' NOTIFY (off: rely on the poll alone).
    pub listen_notify: bool,
    /// How often the version is polled regardless of notifications.
    pub poll_interval: Duration,
    /// Versions kept in the change log; older nodes get a full snapshot.
    pub keep_changes: u64,
}

/// One change as every stream at version `from` sends it.
#[derive(Debug)]
pub struct Delta {
    /// The version the change applies on top of.
    pub from: u64,
    /// The version went back (database restore): every stream sends this
    /// full snapshot whatever it sent before.
    pub reset: bool,
    /// The change in each view (its `version` is the version it brings
    /// streams to).
    pub views: Views,
}

/// The feed of one replica.
#[derive(Debug, Clone)]
pub struct ConfigFeed {
    store: Store,
    secrets: SecretBox,
    deltas: broadcast::Sender<Arc<Delta>>,
    /// The version the feed started at (where the publisher begins).
    start: u64,
    nodes: Arc<NodeRegistry>,
    /// The last full snapshot built, reused while no newer version exists.
    snapshot: Arc<tokio::sync::Mutex<Option<Arc<Views>>>>,
    /// The version this replica published last.
    published: Arc<std::sync::atomic::AtomicU64>,
    /// Whether the store could be read the last time it was tried.
    health: Arc<StoreHealth>,
}

impl ConfigFeed {
    /// A feed starting at the store's current version, for replica
    /// `replica_id`.
    pub async fn new(
        store: Store,
        secrets: SecretBox,
        replica_id: String,
    ) -> Result<Self, StoreError> {
        let start = store.feed_position().await?.version;
        let (deltas, _) = broadcast::channel(FANOUT_CAPACITY);
        Ok(Self {
            store,
            secrets,
            deltas,
            start,
            nodes: Arc::new(NodeRegistry::new(replica_id)),
            snapshot: Arc::default(),
            published: Arc::new(std::sync::atomic::AtomicU64::new(start)),
            health: Arc::default(),
        })
    }

    /// The nodes this replica serves.
    pub fn nodes(&self) -> &NodeRegistry {
        &self.nodes
    }

    /// Writes the nodes' latest state (used once more at shutdown).
    pub async fn flush_nodes(&self) {
        self.nodes.flush(&self.store, false).await;
    }

    /// Changes as they are published.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Delta>> {
        self.deltas.subscribe()
    }

    /// What a `view` stream at `node_version` needs to reach the current
    /// version: the changes since, or a full snapshot when its version is 0,
    /// older than the pruned part of the log, or unknown (ahead of the log,
    /// e.g. after a database restore). `None` when it is up to date.
    ///
    /// While the store cannot be read, a node is served the last full
    /// snapshot in memory, when it is the version this replica published
    /// last (so a node starting during a database outage still gets its
    /// configuration, and never an outdated one).
    pub async fn catch_up(
        &self,
        view: View,
        node_version: u64,
    ) -> Result<Option<EncodedConfigUpdate>, StoreError> {
        let position = match self.position().await {
            Ok(position) => position,
            Err(error) => {
                let Some(snapshot) = self.current_snapshot().await else {
                    return Err(error);
                };
                let version = snapshot.version;
                tracing::debug!(%error, version, "serving the last snapshot from memory");
                if node_version == version {
                    return Ok(None);
                }
                return Ok(Some(snapshot.get(view).clone()));
            }
        };
        if node_version != 0 && node_version == position.version {
            return Ok(None);
        }
        if node_version != 0
            && node_version >= position.compacted_through
            && node_version < position.version
            && let Some(changes) =
                update::changes(&self.store, &self.secrets, node_version, position.version).await?
        {
            return Ok(Some(changes.get(view).clone()));
        }
        let snapshot = self.full_snapshot(position.version).await?;
        Ok(Some(snapshot.get(view).clone()))
    }

    /// The ongoing store outage, if any, with the version of the snapshot
    /// served from memory meanwhile (0: none).
    pub async fn store_outage(&self) -> Option<(Outage, u64)> {
        let outage = self.health.outage()?;
        let serving = self.current_snapshot().await.map_or(0, |s| s.version);
        Some((outage, serving))
    }

    /// The store's current version and change-log horizon, recording
    /// whether the store could be read.
    async fn position(&self) -> Result<FeedPosition, StoreError> {
        let position = self.store.feed_position().await;
        match &position {
            Ok(_) => self.health.recovered(),
            Err(error) => self.store_failed(error).await,
        }
        position
    }

    /// Records a failed read of the store outside the feed (node listing).
    pub async fn store_failed(&self, error: &StoreError) {
        let serving = self.current_snapshot().await.map(|s| s.version);
        self.health.failed(error, serving);
    }

    /// Records a successful read of the store outside the feed.
    pub fn store_recovered(&self) {
        self.health.recovered();
    }

    /// The version this replica published last.
    pub(crate) fn published_version(&self) -> u64 {
        self.published.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The snapshot in memory, if it is the version published last.
    async fn current_snapshot(&self) -> Option<Arc<Views>> {
        let published = self.published.load(std::sync::atomic::Ordering::Acquire);
        let cached = self.snapshot.lock().await;
        cached
            .as_ref()
            .filter(|snapshot| snapshot.version == published)
            .cloned()
    }

    /// Rebuilds the snapshot in memory when the version published last is
    /// newer, so a database outage finds a current one to serve.
    pub(crate) async fn refresh_snapshot(&self) {
        if self.current_snapshot().await.is_some() {
            return;
        }
        let published = self.published.load(std::sync::atomic::Ordering::Acquire);
        if let Err(error) = self.full_snapshot(published).await {
            tracing::debug!(%error, "cannot refresh the snapshot kept in memory");
        }
    }

    /// A full snapshot at `version` or later. Nodes starting together (a
    /// rollout, a control-plane restart) share one read of the world.
    async fn full_snapshot(&self, version: u64) -> Result<Arc<Views>, StoreError> {
        let mut cached = self.snapshot.lock().await;
        // Only the same version: after a database restore the version goes
        // back, and an older world must not be served from the cache.
        if let Some(snapshot) = cached.as_ref().filter(|s| s.version == version) {
            return Ok(Arc::clone(snapshot));
        }
        let snapshot = Arc::new(update::full_snapshot(&self.store, &self.secrets).await?);
        *cached = Some(Arc::clone(&snapshot));
        Ok(snapshot)
    }

    /// Reads and fans out whatever was committed after `published`, the
    /// version this replica last published, and advances it.
    async fn publish_new(&self, published: &mut u64) -> Result<(), StoreError> {
        let position = self.position().await?;
        let from = *published;
        if position.version == from {
            return Ok(());
        }
        let reset = position.version < from;
        let views = if reset {
            tracing::warn!(
                from,
                to = position.version,
                "configuration version went back (database restored?); every node resyncs"
            );
            Views::clone(&*self.full_snapshot(position.version).await?)
        } else if from < position.compacted_through {
            Views::clone(&*self.full_snapshot(position.version).await?)
        } else {
            match update::changes(&self.store, &self.secrets, from, position.version).await? {
                Some(changes) => changes,
                None => Views::clone(&*self.full_snapshot(position.version).await?),
            }
        };
        let to = views.version;
        tracing::debug!(
            from,
            to,
            upserts = views.size.upserts,
            removals = views.size.removals,
            keys = views.size.keys,
            "publishing configuration change"
        );
        // No stream listening is fine: streams catch up from the database.
        let _ = self.deltas.send(Arc::new(Delta { from, reset, views }));
        *published = to;
        self.published
            .store(to, std::sync::atomic::Ordering::Release);
        Ok(())
    }
}
