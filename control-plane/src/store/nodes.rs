//! Data-plane nodes as the control-plane replicas report them, shared by all
//! replicas through the database so ListNodes on any replica shows every node.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{Store, StoreError};

/// A connector a node could not apply, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// The connector.
    pub connector_id: String,
    /// Why.
    pub reason: String,
}

/// A node's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    /// The node's id.
    pub node_id: String,
    /// The replica it is (or was last) connected to.
    pub replica_id: String,
    /// Whether its stream is open.
    pub connected: bool,
    /// Last version it acknowledged.
    pub applied_version: u64,
    /// When it was last heard of, unix ms.
    pub last_seen_ms: i64,
    /// What it could not apply in its last update.
    pub rejections: Vec<Rejection>,
}

impl Store {
    /// Records a node's state (insert or replace), unless the stored state
    /// is newer (the node moved to another replica meanwhile).
    pub async fn save_node(&self, node: &NodeRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO config_nodes (node_id, replica_id, connected, applied_version, last_seen_ms, rejections) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (node_id) DO UPDATE SET replica_id = excluded.replica_id, connected = excluded.connected, \
             applied_version = excluded.applied_version, last_seen_ms = excluded.last_seen_ms, \
             rejections = excluded.rejections \
             WHERE excluded.last_seen_ms >= config_nodes.last_seen_ms",
        )
        .bind(&node.node_id)
        .bind(&node.replica_id)
        .bind(i64::from(node.connected))
        .bind(i64::try_from(node.applied_version).unwrap_or(i64::MAX))
        .bind(node.last_seen_ms)
        .bind(serde_json::to_string(&node.rejections).expect("rejections serialize"))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks the node disconnected, unless another replica has it now.
    pub async fn disconnect_node(
        &self,
        node_id: &str,
        replica_id: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE config_nodes SET connected = 0, last_seen_ms = $1 WHERE node_id = $2 AND replica_id = $3",
        )
        .bind(now_ms)
        .bind(node_id)
        .bind(replica_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every known node, by id.
    pub async fn list_nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT node_id, replica_id, connected, applied_version, last_seen_ms, rejections \
             FROM config_nodes ORDER BY node_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let node_id: String = row.try_get("node_id")?;
                let rejections: String = row.try_get("rejections")?;
                let applied: i64 = row.try_get("applied_version")?;
                let connected: i64 = row.try_get("connected")?;
                Ok(NodeRecord {
                    replica_id: row.try_get("replica_id")?,
                    connected: connected == 1,
                    applied_version: u64::try_from(applied).unwrap_or_default(),
                    last_seen_ms: row.try_get("last_seen_ms")?,
                    rejections: serde_json::from_str(&rejections).map_err(|e| {
                        StoreError::Corrupt {
                            id: node_id.clone(),
                            reason: format!("rejections: {e}"),
                        }
                    })?,
                    node_id,
                })
            })
            .collect()
    }
}
