//! API-key queries. Creating and revoking a key are versioned changes (the
//! feed carries keys to nodes and the stats service); recording a key's
//! last use is not.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::change::Changed;
use super::{Store, StoreError};

const KEY_COLUMNS: &str = "id, prefix, sha256, scope, workspace_id, description, created_at_ms, \
     last_used_at_ms, revoked_at_ms";

/// Most keys one listing returns.
const MAX_LISTED: i64 = 1000;

/// An API key as stored: its digest, never the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// Server-assigned id.
    pub id: String,
    /// The key's first characters.
    pub prefix: String,
    /// SHA-256 of the key, hex.
    pub sha256: String,
    /// The scope, as text.
    pub scope: String,
    /// The scope's workspace (`None` for operator keys).
    pub workspace_id: Option<String>,
    /// The creator's description.
    pub description: String,
    /// Creation time, unix milliseconds.
    pub created_at_ms: i64,
    /// Last use seen by the control plane or stats service.
    pub last_used_at_ms: Option<i64>,
    /// Revocation time; `None` while valid.
    pub revoked_at_ms: Option<i64>,
}

impl KeyRecord {
    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: row.try_get("id")?,
            prefix: row.try_get("prefix")?,
            sha256: row.try_get("sha256")?,
            scope: row.try_get("scope")?,
            workspace_id: row.try_get("workspace_id")?,
            description: row.try_get("description")?,
            created_at_ms: row.try_get("created_at_ms")?,
            last_used_at_ms: row.try_get("last_used_at_ms")?,
            revoked_at_ms: row.try_get("revoked_at_ms")?,
        })
    }
}

impl Store {
    /// Inserts `key` unless its workspace (or, for operator keys, the
    /// deployment) already has `limit` valid keys.
    pub async fn insert_key(&self, key: &KeyRecord, limit: u32) -> Result<(), StoreError> {
        let mut change = self.begin_change().await?;
        // Writers are serialized by the change's version lock: the count
        // cannot go stale before the insert commits.
        let valid: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM api_keys WHERE revoked_at_ms IS NULL \
             AND COALESCE(workspace_id, '') = $1",
        )
        .bind(key.workspace_id.clone().unwrap_or_default())
        .fetch_one(change.tx())
        .await?;
        if valid >= i64::from(limit) {
            change.rollback().await?;
            return Err(StoreError::TooManyKeys {
                scope_workspace: key.workspace_id.clone(),
                limit,
            });
        }
        let sql = format!(
            "INSERT INTO api_keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        );
        sqlx::query(&sql)
            .bind(&key.id)
            .bind(&key.prefix)
            .bind(&key.sha256)
            .bind(&key.scope)
            .bind(key.workspace_id.clone())
            .bind(&key.description)
            .bind(key.created_at_ms)
            .bind(key.last_used_at_ms)
            .bind(key.revoked_at_ms)
            .execute(change.tx())
            .await?;
        change.commit(Changed::Key, &key.id).await
    }

    /// Revokes the key at `now_ms` (a revoked key is returned unchanged).
    pub async fn revoke_key(&self, id: &str, now_ms: i64) -> Result<KeyRecord, StoreError> {
        let mut change = self.begin_change().await?;
        let updated = sqlx::query(
            "UPDATE api_keys SET revoked_at_ms = $2 WHERE id = $1 AND revoked_at_ms IS NULL",
        )
        .bind(id)
        .bind(now_ms)
        .execute(change.tx())
        .await?;
        if updated.rows_affected() == 1 {
            change.commit(Changed::Key, id).await?;
        } else {
            change.rollback().await?;
        }
        self.key(id).await
    }

    /// The key with this id, revoked or not.
    pub async fn key(&self, id: &str) -> Result<KeyRecord, StoreError> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1");
        match sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
        {
            Some(row) => KeyRecord::from_row(&row),
            None => Err(StoreError::KeyNotFound(id.to_owned())),
        }
    }

    /// The key whose SHA-256 is `sha256` (hex), revoked or not.
    pub async fn key_by_digest(&self, sha256: &str) -> Result<Option<KeyRecord>, StoreError> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE sha256 = $1");
        let row = sqlx::query(&sql)
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(KeyRecord::from_row).transpose()
    }

    /// Keys newest first: one workspace's (`Some`) or all, valid only
    /// unless `include_revoked`; at most 1,000.
    pub async fn list_keys(
        &self,
        workspace_id: Option<&str>,
        include_revoked: bool,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys \
             WHERE ($1 = '' OR workspace_id = $1) AND ($2 = 1 OR revoked_at_ms IS NULL) \
             ORDER BY created_at_ms DESC, id DESC LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(workspace_id.unwrap_or_default())
            .bind(i64::from(include_revoked))
            .bind(MAX_LISTED)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(KeyRecord::from_row).collect()
    }

    /// Every valid key.
    pub async fn valid_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE revoked_at_ms IS NULL");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(KeyRecord::from_row).collect()
    }

    /// The keys among `ids`, revoked or not.
    pub async fn keys_by_ids(&self, ids: &[String]) -> Result<Vec<KeyRecord>, StoreError> {
        let select = format!("SELECT {KEY_COLUMNS} FROM api_keys");
        let rows = self.rows_by_ids(&select, ids).await?;
        rows.iter().map(KeyRecord::from_row).collect()
    }

    /// Records that the key was used at `now_ms`, unless a use within
    /// `resolution_ms` is already recorded (so busy keys cost no writes).
    pub async fn touch_key(
        &self,
        id: &str,
        now_ms: i64,
        resolution_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE api_keys SET last_used_at_ms = $2 WHERE id = $1 \
             AND (last_used_at_ms IS NULL OR last_used_at_ms < $3)",
        )
        .bind(id)
        .bind(now_ms)
        .bind(now_ms - resolution_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
