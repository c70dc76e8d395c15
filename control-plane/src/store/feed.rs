//! Reads for the configuration feed: the current version, what changed
//! since a version, and the connectors themselves.

use super::change::Changed;
use super::record::{COLUMNS, ConnectorRecord};
use super::{Store, StoreError};

/// Ids bound per `IN (...)` query.
const IDS_PER_QUERY: usize = 500;

/// The ids a range of the change log names, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangedIds {
    /// Connectors created, changed or deleted.
    pub connectors: Vec<String>,
    /// API keys created or revoked.
    pub keys: Vec<String>,
}

/// Where the change log stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedPosition {
    /// The latest committed configuration version.
    pub version: u64,
    /// Changes up to this version were pruned: a node older than it needs a
    /// full snapshot.
    pub compacted_through: u64,
}

fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or_default()
}

fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Store {
    /// The latest committed version and the pruning horizon.
    pub async fn feed_position(&self) -> Result<FeedPosition, StoreError> {
        let (version, compacted_through): (i64, i64) =
            sqlx::query_as("SELECT version, compacted_through FROM config_state WHERE id = 1")
                .fetch_one(&self.pool)
                .await?;
        Ok(FeedPosition {
            version: unsigned(version),
            compacted_through: unsigned(compacted_through),
        })
    }

    /// What changed in versions `(after, upto]`.
    pub async fn changed_since(&self, after: u64, upto: u64) -> Result<ChangedIds, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT DISTINCT kind, connector_id FROM config_changes WHERE version > $1 AND version <= $2",
        )
        .bind(signed(after))
        .bind(signed(upto))
        .fetch_all(&self.pool)
        .await?;
        let mut changed = ChangedIds::default();
        for (kind, id) in rows {
            if kind == Changed::Key.as_str() {
                changed.keys.push(id);
            } else {
                changed.connectors.push(id);
            }
        }
        Ok(changed)
    }

    /// Every connector, ACTIVE or not.
    pub async fn all_connectors(&self) -> Result<Vec<ConnectorRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM connectors ORDER BY id");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(ConnectorRecord::from_row).collect()
    }

    /// The connectors among `ids` that still exist (deleted ones are absent).
    pub async fn connectors_by_ids(
        &self,
        ids: &[String],
    ) -> Result<Vec<ConnectorRecord>, StoreError> {
        let select = format!("SELECT {COLUMNS} FROM connectors");
        let rows = self.rows_by_ids(&select, ids).await?;
        rows.iter().map(ConnectorRecord::from_row).collect()
    }

    /// The rows of `select` (a query on a table with an `id` column) whose
    /// id is among `ids`, in chunks of bound parameters.
    pub(super) async fn rows_by_ids(
        &self,
        select: &str,
        ids: &[String],
    ) -> Result<Vec<sqlx::any::AnyRow>, StoreError> {
        let mut rows = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|n| format!("${n}")).collect();
            let sql = format!("{select} WHERE id IN ({})", placeholders.join(", "));
            let query = chunk
                .iter()
                .fold(sqlx::query(&sql), |query, id| query.bind(id));
            rows.extend(query.fetch_all(&self.pool).await?);
        }
        Ok(rows)
    }

    /// Prunes the change log, keeping the latest `keep` versions. Nodes older
    /// than the pruned part get a full snapshot. Returns the new horizon.
    pub async fn compact_changes(&self, keep: u64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let horizon: i64 = sqlx::query_scalar(
            "UPDATE config_state SET compacted_through = \
             CASE WHEN version - $1 > compacted_through THEN version - $1 ELSE compacted_through END \
             WHERE id = 1 RETURNING compacted_through",
        )
        .bind(signed(keep))
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM config_changes WHERE version <= $1")
            .bind(horizon)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(unsigned(horizon))
    }

    /// A receiver of the latest version committed by this process; other
    /// replicas' commits arrive through the feed's NOTIFY listener and poll.
    pub fn local_commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.committed.subscribe()
    }
}
