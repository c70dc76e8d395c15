//! The node's configuration at one version: every ACTIVE connector it
//! delivers for, indexed by workspace for routing. Snapshots are immutable;
//! applying an update builds the next one.

use std::collections::HashMap;
use std::sync::Arc;

use eventconnectors_proto::v1::{ConfigUpdate, ConnectorConfig, ConnectorRejection};
use eventconnectors_proto::validation::{ConnectorDraft, Violations, check_draft, check_partner};

/// The configuration at one version.
#[derive(Debug, Default)]
pub struct Snapshot {
    version: u64,
    connectors: HashMap<String, Arc<ConnectorConfig>>,
    by_workspace: HashMap<String, Vec<Arc<ConnectorConfig>>>,
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

    /// The workspace's connectors.
    pub fn workspace(&self, workspace_id: &str) -> &[Arc<ConnectorConfig>] {
        self.by_workspace
            .get(workspace_id)
            .map_or(&[], Vec::as_slice)
    }

    /// The snapshot after `update`, and the connectors this node could not
    /// apply (left out, so nothing is sent for them with a configuration the
    /// node does not understand).
    pub fn apply(&self, update: ConfigUpdate) -> (Self, Vec<ConnectorRejection>) {
        let mut connectors = if update.full_snapshot {
            HashMap::with_capacity(update.upserts.len())
        } else {
            self.connectors.clone()
        };
        for id in &update.removed_connector_ids {
            connectors.remove(id);
        }
        let mut rejections = Vec::new();
        for connector in update.upserts {
            match check(&connector) {
                Ok(()) => {
                    connectors.insert(connector.id.clone(), Arc::new(connector));
                }
                Err(reason) => {
                    connectors.remove(&connector.id);
                    rejections.push(ConnectorRejection {
                        connector_id: connector.id,
                        reason,
                    });
                }
            }
        }
        let mut by_workspace: HashMap<String, Vec<Arc<ConnectorConfig>>> = HashMap::new();
        for connector in connectors.values() {
            by_workspace
                .entry(connector.workspace_id.clone())
                .or_default()
                .push(Arc::clone(connector));
        }
        let next = Self {
            version: update.version,
            connectors,
            by_workspace,
        };
        (next, rejections)
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
        }
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
        unknown.partner = "snapchat".into();
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
            rejected[0].reason.contains("unknown partner `snapchat`"),
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
