//! Builds what nodes receive: full snapshots and changes between versions,
//! with secrets opened. Rows are always read after the version they are
//! labelled with, so a row is never older than its label.

use std::collections::HashSet;

use eventconnectors_proto::v1::{ConfigUpdate, ConnectorConfig};

use crate::secrets::SecretBox;
use crate::store::{ConnectorRecord, ConnectorStatus, Store, StoreError};

/// The whole state of the world at (at least) the current version.
pub async fn full_snapshot(store: &Store, secrets: &SecretBox) -> Result<ConfigUpdate, StoreError> {
    let position = store.feed_position().await?;
    let records = store.active_connectors().await?;
    Ok(ConfigUpdate {
        version: position.version,
        full_snapshot: true,
        upserts: records
            .iter()
            .filter_map(|r| node_config(r, secrets))
            .collect(),
        removed_connector_ids: Vec::new(),
    })
}

/// What a node at version `after` needs to reach `upto`: the connectors
/// changed in between, in their current state (ACTIVE ones as upserts, the
/// rest as removals). `None` when the log was pruned past `after` meanwhile
/// (the caller sends a full snapshot instead).
pub async fn changes(
    store: &Store,
    secrets: &SecretBox,
    after: u64,
    upto: u64,
) -> Result<Option<ConfigUpdate>, StoreError> {
    let changed = store.changed_since(after, upto).await?;
    if after < store.feed_position().await?.compacted_through {
        return Ok(None);
    }
    let records = store.connectors_by_ids(&changed).await?;
    let mut upserts = Vec::with_capacity(records.len());
    for record in &records {
        if record.status == ConnectorStatus::Active
            && let Some(config) = node_config(record, secrets)
        {
            upserts.push(config);
        }
    }
    let upserted: HashSet<&str> = upserts.iter().map(|u| u.id.as_str()).collect();
    let removed_connector_ids = changed
        .iter()
        .filter(|id| !upserted.contains(id.as_str()))
        .cloned()
        .collect();
    Ok(Some(ConfigUpdate {
        version: upto,
        full_snapshot: false,
        upserts,
        removed_connector_ids,
    }))
}

/// The connector as nodes receive it, secrets opened. `None` (logged) when
/// its secrets cannot be opened: nodes then stop sending for it rather than
/// send with credentials nobody can vouch for.
fn node_config(record: &ConnectorRecord, secrets: &SecretBox) -> Option<ConnectorConfig> {
    let opened = match secrets.open(&record.id, &record.sealed_secrets) {
        Ok(opened) => opened,
        Err(error) => {
            tracing::error!(%error, connector_id = %record.id, "connector left out of the configuration feed");
            return None;
        }
    };
    Some(ConnectorConfig {
        id: record.id.clone(),
        workspace_id: record.workspace_id.clone(),
        partner: record.partner.clone(),
        settings: record.settings.clone(),
        secrets: opened,
        mappings: record.mappings.clone(),
        filter: record.filter.clone(),
        connector_version: record.version,
    })
}
