//! The node's configuration at one version: every ACTIVE connector it
//! delivers for, indexed by workspace for routing, and the valid API keys
//! (their digests and scopes) that ingest may present. Snapshots are immutable
//! and share structure: applying a change to one connector costs O(log n)
//! plus the size of its workspace, not a copy of every connector, so a
//! node with tens of thousands of connectors applies changes in microseconds.

use std::sync::Arc;

use eventconnectors_proto::v1::{ConfigUpdate, ConnectorConfig, ConnectorRejection};
use partners::validation::{ConnectorDraft, Violations, check_draft, check_partner};
use server_kit::access::KeyRing;

type Connectors = imbl::HashMap<String, Arc<ConnectorConfig>>;

/// The configuration at one version.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    version: u64,
    connectors: Connectors,
    /// Each workspace's connectors by id (for incremental updates).
    members: imbl::HashMap<String, imbl::OrdMap<String, Arc<ConnectorConfig>>>,
    /// Each workspace's connectors as a slice (for routing).
    routes: imbl::HashMap<String, Arc<[Arc<ConnectorConfig>]>>,
    /// Valid API keys; shared between versions until keys change.
    keys: Arc<KeyRing>,
}

impl Snapshot {
    /// The configuration version.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Number of connectors.
    pub fn len(&self) -> usize {
        self.connectors.len()
    }

    /// Whether there are no connectors.
    pub fn is_empty(&self) -> bool {
        self.connectors.is_empty()
    }

    /// The connector with this id.
    pub fn connector(&self, id: &str) -> Option<&Arc<ConnectorConfig>> {
        self.connectors.get(id)
    }

    /// Every connector.
    pub fn connectors(&self) -> impl Iterator<Item = &Arc<ConnectorConfig>> {
        self.connectors.values()
    }

    /// The valid API keys.
    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// The workspace's connectors.
    pub fn workspace(&self, workspace_id: &str) -> &[Arc<ConnectorConfig>] {
        self.routes.get(workspace_id).map_or(&[], |list| list)
    }

    /// The snapshot after `update`, and the connectors this node could not
    /// apply (left out, so nothing is sent for them with a configuration the
    /// node does not understand).
    pub fn apply(&self, update: ConfigUpdate) -> (Self, Vec<ConnectorRejection>) {
        let mut next = if update.full_snapshot {
            Self::default()
        } else {
            self.clone()
        };
        next.version = update.version;
        if update.full_snapshot
            || !update.key_upserts.is_empty()
            || !update.revoked_key_ids.is_empty()
        {
            Arc::make_mut(&mut next.keys).apply(
                update.full_snapshot,
                &update.key_upserts,
                &update.revoked_key_ids,
            );
        }
        let mut touched = std::collections::HashSet::new();
        for id in &update.removed_connector_ids {
            if let Some(removed) = next.remove(id) {
                touched.insert(removed.workspace_id.clone());
            }
        }
        let mut rejections = Vec::new();
        for connector in update.upserts {
            if let Some(previous) = next.remove(&connector.id) {
                touched.insert(previous.workspace_id.clone());
            }
            match check(&connector) {
                Ok(()) => {
                    touched.insert(connector.workspace_id.clone());
                    next.insert(Arc::new(connector));
                }
                Err(reason) => rejections.push(ConnectorRejection {
                    connector_id: connector.id,
                    reason,
                }),
            }
        }
        for workspace in touched {
            match next.members.get(&workspace) {
                Some(members) if !members.is_empty() => {
                    let list: Arc<[Arc<ConnectorConfig>]> = members.values().cloned().collect();
                    next.routes.insert(workspace, list);
                }
                _ => {
                    next.members.remove(&workspace);
                    next.routes.remove(&workspace);
                }
            }
        }
        (next, rejections)
    }

    fn remove(&mut self, id: &str) -> Option<Arc<ConnectorConfig>> {
        let removed = self.connectors.remove(id)?;
        if let Some(members) = self.members.get_mut(&removed.workspace_id) {
            members.remove(id);
        }
        Some(removed)
    }

    fn insert(&mut self, connector: Arc<ConnectorConfig>) {
        self.members
            .entry(connector.workspace_id.clone())
            .or_default()
            .insert(connector.id.clone(), Arc::clone(&connector));
        self.connectors.insert(connector.id.clone(), connector);
    }
}

/// Whether this node understands the connector (its catalog may be older
/// than the control plane's).
fn check(connector: &ConnectorConfig) -> Result<(), String> {
    let mut violations = Violations::default();
    if let Some(partner) = check_partner(&mut violations, "partner", &connector.partner) {
        let draft = ConnectorDraft {
            name: connector.id.clone(),
            settings: connector.settings.clone(),
            secrets: connector.secrets.clone(),
            mappings: connector.mappings.clone(),
            filter: connector.filter.clone(),
        };
        check_draft(&mut violations, "connector", partner, &draft);
    }
    violations.into_result(()).map_err(|violations| {
        violations
            .iter()
            .map(|v| format!("{}: {}", v.field, v.description))
            .collect::<Vec<_>>()
            .join("; ")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook(id: &str, workspace: &str) -> ConnectorConfig {
        ConnectorConfig {
            id: id.into(),
            workspace_id: workspace.into(),
            partner: "webhook".into(),
            settings: [("url".to_owned(), "https://example.com/h".to_owned())].into(),
            ..Default::default()
        }
    }

    fn update(
        version: u64,
        full: bool,
        upserts: Vec<ConnectorConfig>,
        removed: &[&str],
    ) -> ConfigUpdate {
        ConfigUpdate {
            version,
            full_snapshot: full,
            upserts,
            removed_connector_ids: removed.iter().map(|r| (*r).to_owned()).collect(),
            ..ConfigUpdate::default()
        }
    }

    #[test]
    fn keys_follow_the_feed_and_survive_connector_changes() {
        let grant = |id: &str, key: &[u8]| eventconnectors_proto::v1::KeyGrant {
            id: id.into(),
            sha256: server_kit::access::digest(key).to_vec(),
            scope: "workspace:w1:ingest".into(),
        };
        let mut first = update(1, true, vec![webhook("a", "w1")], &[]);
        first.key_upserts = vec![grant("k1", b"one"), grant("k2", b"two")];
        let (one, _) = Snapshot::default().apply(first);
        assert_eq!(one.keys().len(), 2);
        let (two, _) = one.apply(update(2, false, vec![webhook("b", "w1")], &[]));
        assert_eq!(two.keys().len(), 2, "a connector change keeps the keys");
        let mut revoke = update(3, false, vec![], &[]);
        revoke.revoked_key_ids = vec!["k1".into()];
        let (three, _) = two.apply(revoke);
        assert!(
            three
                .keys()
                .find(&server_kit::access::digest(b"one"))
                .is_none()
        );
        assert!(
            three
                .keys()
                .find(&server_kit::access::digest(b"two"))
                .is_some()
        );
        assert_eq!(two.keys().len(), 2, "the previous snapshot is untouched");
    }

    #[test]
    fn changes_apply_on_top_and_snapshots_replace() {
        let empty = Snapshot::default();
        let (one, rejected) = empty.apply(update(
            3,
            true,
            vec![webhook("a", "w1"), webhook("b", "w2")],
            &[],
        ));
        assert!(rejected.is_empty());
        assert_eq!((one.version(), one.len()), (3, 2));
        let (two, _) = one.apply(update(4, false, vec![webhook("c", "w1")], &["b"]));
        assert_eq!(two.workspace("w1").len(), 2);
        assert!(two.workspace("w2").is_empty());
        assert_eq!(one.len(), 2, "the previous snapshot is untouched");
        let (three, _) = two.apply(update(5, true, vec![webhook("z", "w9")], &[]));
        assert_eq!(three.len(), 1, "a full snapshot replaces everything");
    }

    #[test]
    fn connectors_this_node_cannot_understand_are_rejected_and_left_out() {
        let mut unknown = webhook("x", "w1");
        unknown.partner = "myspace".into();
        let mut bad_mapping = webhook("y", "w1");
        bad_mapping.mappings.push(Default::default());
        let (next, rejected) = Snapshot::default().apply(update(
            2,
            true,
            vec![unknown, bad_mapping, webhook("ok", "w1")],
            &[],
        ));
        assert_eq!(next.len(), 1);
        let ids: Vec<_> = rejected.iter().map(|r| r.connector_id.as_str()).collect();
        assert_eq!(ids, ["x", "y"]);
        assert!(
            rejected[0].reason.contains("unknown partner `myspace`"),
            "{}",
            rejected[0].reason
        );
        assert!(
            rejected[1].reason.contains("mappings[0]"),
            "{}",
            rejected[1].reason
        );
    }
}
