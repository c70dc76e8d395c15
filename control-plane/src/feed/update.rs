//! Builds what the feed sends: full snapshots and changes between versions,
//! in both views (see [`View`]) from one read of the store. Rows are always
//! read after the version they are labelled with, so a row is never older
//! than its label.

use std::collections::HashSet;

use eventconnectors_proto::shared::EncodedConfigUpdate;
use eventconnectors_proto::v1::{ConfigUpdate, ConnectorConfig, KeyGrant};

use crate::secrets::SecretBox;
use crate::store::{ConnectorRecord, ConnectorStatus, KeyRecord, Store, StoreError};

/// Who a stream serves, and so what it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Data-plane nodes: ACTIVE connectors with their credentials opened,
    /// and key grants.
    Node,
    /// The stats service: every connector's id, workspace, partner and
    /// version (nothing else), and key grants. Removals name deleted
    /// connectors only.
    Directory,
}

/// One change (or snapshot) in both views, each encoded once: every
/// stream of a view sends the same bytes (a clone shares them).
#[derive(Debug, Clone)]
pub struct Views {
    /// The version the change brings streams to.
    pub version: u64,
    /// What it holds, for logs.
    pub size: Size,
    node: EncodedConfigUpdate,
    directory: EncodedConfigUpdate,
}

/// What a node update holds.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    /// Connectors added or changed.
    pub upserts: usize,
    /// Connectors removed.
    pub removals: usize,
    /// Keys granted or revoked.
    pub keys: usize,
}

impl Views {
    fn new(node: &ConfigUpdate, directory: &ConfigUpdate) -> Self {
        Self {
            version: node.version,
            size: Size {
                upserts: node.upserts.len(),
                removals: node.removed_connector_ids.len(),
                keys: node.key_upserts.len() + node.revoked_key_ids.len(),
            },
            node: EncodedConfigUpdate::new(node),
            directory: EncodedConfigUpdate::new(directory),
        }
    }

    /// The update for `view`.
    pub fn get(&self, view: View) -> &EncodedConfigUpdate {
        match view {
            View::Node => &self.node,
            View::Directory => &self.directory,
        }
    }
}

/// The whole state of the world at (at least) the current version.
pub async fn full_snapshot(store: &Store, secrets: &SecretBox) -> Result<Views, StoreError> {
    let position = store.feed_position().await?;
    let records = store.all_connectors().await?;
    let keys: Vec<KeyGrant> = store.valid_keys().await?.iter().filter_map(grant).collect();
    let empty = |upserts| ConfigUpdate {
        version: position.version,
        full_snapshot: true,
        upserts,
        removed_connector_ids: Vec::new(),
        key_upserts: keys.clone(),
        revoked_key_ids: Vec::new(),
    };
    Ok(Views::new(
        &empty(
            records
                .iter()
                .filter(|r| r.status == ConnectorStatus::Active)
                .filter_map(|r| node_config(r, secrets))
                .collect(),
        ),
        &empty(records.iter().map(directory_entry).collect()),
    ))
}

/// What a stream at version `after` needs to reach `upto`: what changed in
/// between, in its current state. `None` when the log was pruned past
/// `after` meanwhile (the caller sends a full snapshot instead).
pub async fn changes(
    store: &Store,
    secrets: &SecretBox,
    after: u64,
    upto: u64,
) -> Result<Option<Views>, StoreError> {
    let changed = store.changed_since(after, upto).await?;
    if after < store.feed_position().await?.compacted_through {
        return Ok(None);
    }
    let records = store.connectors_by_ids(&changed.connectors).await?;
    let keys = store.keys_by_ids(&changed.keys).await?;
    let key_upserts: Vec<KeyGrant> = keys
        .iter()
        .filter(|k| k.revoked_at_ms.is_none())
        .filter_map(grant)
        .collect();
    let granted: HashSet<&str> = key_upserts.iter().map(|k| k.id.as_str()).collect();
    let revoked_key_ids: Vec<String> = changed
        .keys
        .iter()
        .filter(|id| !granted.contains(id.as_str()))
        .cloned()
        .collect();

    let mut upserts = Vec::with_capacity(records.len());
    for record in &records {
        if record.status == ConnectorStatus::Active
            && let Some(config) = node_config(record, secrets)
        {
            upserts.push(config);
        }
    }
    let removed = |kept: &HashSet<&str>| -> Vec<String> {
        changed
            .connectors
            .iter()
            .filter(|id| !kept.contains(id.as_str()))
            .cloned()
            .collect()
    };
    let node_removals = {
        let upserted: HashSet<&str> = upserts.iter().map(|u| u.id.as_str()).collect();
        removed(&upserted)
    };
    let existing: HashSet<&str> = records.iter().map(|r| r.id.as_str()).collect();
    let update = |upserts, removed_connector_ids| ConfigUpdate {
        version: upto,
        full_snapshot: false,
        upserts,
        removed_connector_ids,
        key_upserts: key_upserts.clone(),
        revoked_key_ids: revoked_key_ids.clone(),
    };
    Ok(Some(Views::new(
        &update(upserts, node_removals),
        &update(
            records.iter().map(directory_entry).collect(),
            removed(&existing),
        ),
    )))
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
    Some(record.config(opened))
}

/// The connector as the stats service receives it: who owns it, nothing
/// that configures it.
fn directory_entry(record: &ConnectorRecord) -> ConnectorConfig {
    ConnectorConfig {
        id: record.id.clone(),
        workspace_id: record.workspace_id.clone(),
        partner: record.partner.clone(),
        connector_version: record.version,
        ..ConnectorConfig::default()
    }
}

/// The key as services receive it; `None` (logged) for a stored digest
/// that is not 32 bytes of hex, which leaves the key unusable.
fn grant(key: &KeyRecord) -> Option<KeyGrant> {
    let mut digest = [0u8; 32];
    match hex::decode_to_slice(&key.sha256, &mut digest)
        .ok()
        .map(|()| digest)
    {
        Some(sha256) => Some(KeyGrant {
            id: key.id.clone(),
            sha256: sha256.to_vec(),
            scope: key.scope.clone(),
        }),
        None => {
            tracing::error!(key_id = %key.id, "stored key digest is corrupt; key left out");
            None
        }
    }
}
