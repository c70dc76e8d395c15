//! Connector queries. Every change is one statement guarded by the row's
//! version or status, so concurrent writers never overwrite each other, run
//! inside a [`Change`](super::change::Change) that versions it for the
//! configuration feed.

use super::change::Changed;
use super::record::{COLUMNS, ConnectorRecord, ConnectorStatus, ListFilter, NewConnector};
use super::{Store, StoreError};

impl Store {
    /// Inserts a connector. When `request_id` was already used in the same
    /// workspace, returns the connector that request created instead.
    pub async fn insert(&self, new: &NewConnector) -> Result<ConnectorRecord, StoreError> {
        let record = &new.record;
        let encoded = record.encode();
        let sql = format!(
            "INSERT INTO connectors ({COLUMNS}, create_request_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT (workspace_id, create_request_id) DO NOTHING \
             RETURNING {COLUMNS}"
        );
        let mut change = self.begin_change().await?;
        let inserted = sqlx::query(&sql)
            .bind(&record.id)
            .bind(&record.workspace_id)
            .bind(&record.name)
            .bind(&record.partner)
            .bind(record.status.as_str())
            .bind(encoded.settings)
            .bind(record.sealed_secrets.clone())
            .bind(encoded.secret_names)
            .bind(encoded.mappings)
            .bind(encoded.filter)
            .bind(record.version)
            .bind(record.created_at_ms)
            .bind(record.updated_at_ms)
            .bind(new.request_id.clone())
            .fetch_optional(change.tx())
            .await?;
        if let Some(row) = inserted {
            let stored = ConnectorRecord::from_row(&row)?;
            change.commit(Changed::Connector, &stored.id).await?;
            return Ok(stored);
        }
        change.rollback().await?;
        // Only a request-id conflict skips the insert: return its connector.
        let sql = format!(
            "SELECT {COLUMNS} FROM connectors WHERE workspace_id = $1 AND create_request_id = $2"
        );
        let row = sqlx::query(&sql)
            .bind(&record.workspace_id)
            .bind(new.request_id.clone())
            .fetch_one(&self.pool)
            .await?;
        ConnectorRecord::from_row(&row)
    }

    /// The connector with this id.
    pub async fn get(&self, id: &str) -> Result<ConnectorRecord, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM connectors WHERE id = $1");
        match sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
        {
            Some(row) => ConnectorRecord::from_row(&row),
            None => Err(StoreError::NotFound(id.to_owned())),
        }
    }

    /// Up to `limit` connectors with ids after `after`, in id order.
    pub async fn list(
        &self,
        filter: &ListFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ConnectorRecord>, StoreError> {
        // Only the filters given, so the planner can use the workspace index.
        let mut conditions = vec!["id > $1".to_owned()];
        let mut values: Vec<String> = vec![after.unwrap_or_default().to_owned()];
        if let Some(workspace_id) = &filter.workspace_id {
            values.push(workspace_id.clone());
            conditions.push(format!("workspace_id = ${}", values.len()));
        }
        if let Some(status) = filter.status {
            values.push(status.as_str().to_owned());
            conditions.push(format!("status = ${}", values.len()));
        }
        let sql = format!(
            "SELECT {COLUMNS} FROM connectors WHERE {} ORDER BY id LIMIT ${}",
            conditions.join(" AND "),
            values.len() + 1
        );
        let query = values
            .into_iter()
            .fold(sqlx::query(&sql), |query, value| query.bind(value));
        let rows = query.bind(i64::from(limit)).fetch_all(&self.pool).await?;
        rows.iter().map(ConnectorRecord::from_row).collect()
    }

    /// Replaces the mutable fields of `record` if the stored version is still
    /// `expected_version`; the stored version becomes `expected_version + 1`.
    pub async fn update(
        &self,
        record: &ConnectorRecord,
        expected_version: i64,
    ) -> Result<ConnectorRecord, StoreError> {
        let encoded = record.encode();
        let sql = format!(
            "UPDATE connectors SET name = $1, settings = $2, secrets = $3, secret_names = $4, mappings = $5, \
             filter = $6, version = version + 1, updated_at_ms = $7 \
             WHERE id = $8 AND version = $9 RETURNING {COLUMNS}"
        );
        let mut change = self.begin_change().await?;
        let updated = sqlx::query(&sql)
            .bind(&record.name)
            .bind(encoded.settings)
            .bind(record.sealed_secrets.clone())
            .bind(encoded.secret_names)
            .bind(encoded.mappings)
            .bind(encoded.filter)
            .bind(record.updated_at_ms)
            .bind(&record.id)
            .bind(expected_version)
            .fetch_optional(change.tx())
            .await?;
        match updated {
            Some(row) => {
                let stored = ConnectorRecord::from_row(&row)?;
                change.commit(Changed::Connector, &stored.id).await?;
                Ok(stored)
            }
            None => {
                change.rollback().await?;
                Err(self.version_conflict(&record.id, expected_version).await)
            }
        }
    }

    /// Replaces connector `id`'s sealed secrets `old` by `new` (the same
    /// secrets, sealed with another key). Not a configuration change: nodes
    /// receive the secrets opened, which are unchanged. `false` when the row
    /// no longer holds `old` (changed meanwhile, or deleted).
    pub async fn replace_sealed(
        &self,
        id: &str,
        old: &[u8],
        new: &[u8],
    ) -> Result<bool, StoreError> {
        let updated =
            sqlx::query("UPDATE connectors SET secrets = $1 WHERE id = $2 AND secrets = $3")
                .bind(new.to_vec())
                .bind(id)
                .bind(old.to_vec())
                .execute(&self.pool)
                .await?;
        Ok(updated.rows_affected() == 1)
    }

    /// Sets the status. Returns the connector unchanged (same version) when
    /// it already had that status.
    pub async fn set_status(
        &self,
        id: &str,
        status: ConnectorStatus,
        now_ms: i64,
    ) -> Result<ConnectorRecord, StoreError> {
        let sql = format!(
            "UPDATE connectors SET status = $1, version = version + 1, updated_at_ms = $2 \
             WHERE id = $3 AND status <> $1 RETURNING {COLUMNS}"
        );
        let mut change = self.begin_change().await?;
        let updated = sqlx::query(&sql)
            .bind(status.as_str())
            .bind(now_ms)
            .bind(id)
            .fetch_optional(change.tx())
            .await?;
        match updated {
            Some(row) => {
                let stored = ConnectorRecord::from_row(&row)?;
                change.commit(Changed::Connector, id).await?;
                Ok(stored)
            }
            None => {
                change.rollback().await?;
                self.get(id).await
            }
        }
    }

    /// Removes the connector and records the deletion, in one transaction, so
    /// its statistics can be erased even if that fails now.
    pub async fn delete(&self, id: &str, now_ms: i64) -> Result<(), StoreError> {
        let mut change = self.begin_change().await?;
        let workspace: Option<String> =
            sqlx::query_scalar("DELETE FROM connectors WHERE id = $1 RETURNING workspace_id")
                .bind(id)
                .fetch_optional(change.tx())
                .await?;
        let Some(workspace_id) = workspace else {
            change.rollback().await?;
            return Err(StoreError::NotFound(id.to_owned()));
        };
        sqlx::query(
            "INSERT INTO connector_deletions (connector_id, workspace_id, deleted_at_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (connector_id) DO NOTHING",
        )
        .bind(id)
        .bind(workspace_id)
        .bind(now_ms)
        .execute(change.tx())
        .await?;
        change.commit(Changed::Connector, id).await
    }

    /// Deleted connectors whose statistics are not yet confirmed erased,
    /// oldest first.
    pub async fn pending_stats_erasures(&self, limit: u32) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT connector_id FROM connector_deletions WHERE stats_erased_at_ms IS NULL \
             ORDER BY deleted_at_ms LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Records that the statistics of deleted connector `id` are erased.
    pub async fn mark_stats_erased(&self, id: &str, now_ms: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE connector_deletions SET stats_erased_at_ms = $1 WHERE connector_id = $2",
        )
        .bind(now_ms)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Why a version-guarded change matched no row.
    async fn version_conflict(&self, id: &str, expected: i64) -> StoreError {
        match self.get(id).await {
            Ok(current) => StoreError::VersionMismatch {
                id: id.to_owned(),
                expected,
                current: current.version,
            },
            Err(error) => error,
        }
    }
}
