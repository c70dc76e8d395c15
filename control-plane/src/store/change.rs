//! A versioned change: the transaction every connector or API-key write
//! runs in.
//!
//! It first takes the next configuration version from the single
//! `config_state` row. That row lock is held until commit, so writers are
//! serialized and versions become visible in order: whoever reads version V
//! has every change up to V. The commit logs what changed and
//! wakes the feed: in this process directly, in other replicas through
//! Postgres NOTIFY (delivered at commit).

use sqlx::{Any, AnyConnection, Transaction};

use super::{Backend, Store, StoreError};

/// The Postgres NOTIFY channel that carries new versions between replicas.
pub const NOTIFY_CHANNEL: &str = "eventconnectors_config";

/// What a change is about (the change log's `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changed {
    /// A connector (`connector_id` is its id).
    Connector,
    /// An API key (`connector_id` holds the key's id).
    Key,
}

impl Changed {
    /// The value stored in `config_changes.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connector => "connector",
            Self::Key => "key",
        }
    }
}

/// An open, versioned change.
pub(super) struct Change<'s> {
    store: &'s Store,
    tx: Transaction<'static, Any>,
    version: i64,
}

impl Store {
    /// Starts a change and takes its version.
    pub(super) async fn begin_change(&self) -> Result<Change<'_>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let version: i64 = sqlx::query_scalar(
            "UPDATE config_state SET version = version + 1 WHERE id = 1 RETURNING version",
        )
        .fetch_one(&mut *tx)
        .await?;
        Ok(Change {
            store: self,
            tx,
            version,
        })
    }
}

impl Change<'_> {
    /// The transaction, to run the change's statements in.
    pub(super) fn tx(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    /// Logs that the `kind` entity with `id` changed, commits, and wakes
    /// the feed.
    pub(super) async fn commit(mut self, kind: Changed, id: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO config_changes (version, connector_id, kind, changed_at_ms) VALUES ($1, $2, $3, $4)",
        )
        .bind(self.version)
        .bind(id)
        .bind(kind.as_str())
        .bind(crate::clock::now_ms())
        .execute(&mut *self.tx)
        .await?;
        if self.store.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(NOTIFY_CHANNEL)
                .bind(self.version.to_string())
                .execute(&mut *self.tx)
                .await?;
        }
        self.tx.commit().await?;
        let version = u64::try_from(self.version).unwrap_or_default();
        self.store.committed.send_if_modified(|latest| {
            let newer = version > *latest;
            if newer {
                *latest = version;
            }
            newer
        });
        Ok(())
    }

    /// Abandons the change (nothing was written); its version is not used.
    pub(super) async fn rollback(self) -> Result<(), StoreError> {
        Ok(self.tx.rollback().await?)
    }
}
