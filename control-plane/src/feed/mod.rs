//! The configuration feed: each replica learns of new versions (its own
//! commits directly, other replicas' through Postgres NOTIFY, and a periodic
//! poll as the safety net), reads each change once, and fans it out to every
//! node stream it serves.

mod publisher;
mod service;
mod update;

use std::sync::Arc;
use std::time::Duration;

use eventconnectors_proto::v1::ConfigUpdate;
use tokio::sync::{broadcast, watch};

pub use service::ConfigApi;

use crate::secrets::SecretBox;
use crate::store::{Store, StoreError};

/// Changes kept for streams that are briefly behind; a stream further behind
/// catches up from the database instead.
const FANOUT_CAPACITY: usize = 1024;

/// How the feed learns of new versions.
#[derive(Debug, Clone)]
pub struct FeedSettings {
    /// Database URL, for the NOTIFY listener (Postgres only).
    pub database_url: String,
    /// Listen for other replicas' NOTIFY (off: rely on the poll alone).
    pub listen_notify: bool,
    /// How often the version is polled regardless of notifications.
    pub poll_interval: Duration,
    /// Versions kept in the change log; older nodes get a full snapshot.
    pub keep_changes: u64,
    /// This replica's id, recorded with the nodes it serves.
    pub replica_id: String,
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// One change as every stream at version `from` sends it.
#[derive(Debug)]
pub struct Delta {
    /// The version the change applies on top of.
    pub from: u64,
    /// The change (its `version` is the version it brings nodes to).
    pub update: ConfigUpdate,
}

/// The feed of one replica.
#[derive(Debug, Clone)]
pub struct ConfigFeed {
    store: Store,
    secrets: SecretBox,
    deltas: broadcast::Sender<Arc<Delta>>,
    published: Arc<watch::Sender<u64>>,
}

impl ConfigFeed {
    /// A feed starting at the store's current version.
    pub async fn new(store: Store, secrets: SecretBox) -> Result<Self, StoreError> {
        let start = store.feed_position().await?.version;
        let (deltas, _) = broadcast::channel(FANOUT_CAPACITY);
        let (published, _) = watch::channel(start);
        Ok(Self {
            store,
            secrets,
            deltas,
            published: Arc::new(published),
        })
    }

    /// Changes as they are published.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Delta>> {
        self.deltas.subscribe()
    }

    /// What a node at `node_version` needs to be current (see
    /// [`update::catch_up`]).
    pub async fn catch_up(&self, node_version: u64) -> Result<Option<ConfigUpdate>, StoreError> {
        update::catch_up(&self.store, &self.secrets, node_version).await
    }

    /// Reads and fans out whatever was committed since the last publication.
    async fn publish_new(&self) -> Result<(), StoreError> {
        let position = self.store.feed_position().await?;
        let from = *self.published.borrow();
        if position.version <= from {
            return Ok(());
        }
        let update = if from < position.compacted_through {
            update::full_snapshot(&self.store, &self.secrets).await?
        } else {
            update::changes(&self.store, &self.secrets, from, position.version).await?
        };
        let to = update.version;
        tracing::debug!(
            from,
            to,
            upserts = update.upserts.len(),
            removals = update.removed_connector_ids.len(),
            "publishing configuration change"
        );
        // No stream listening is fine: streams catch up from the database.
        let _ = self.deltas.send(Arc::new(Delta { from, update }));
        self.published.send_replace(to);
        Ok(())
    }
}
