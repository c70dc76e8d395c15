//! Follows the configuration: a lane for each new connector, the new
//! configuration for each changed one, a stop for each one gone (its queued
//! events are dropped and counted), and new route lists for the workspaces
//! touched. Runs on every applied version; a change costs one pass over
//! the connectors plus the touched workspaces.

use std::collections::HashSet;
use std::sync::Arc;

use super::{Dispatcher, Intake};
use crate::config_feed::Snapshot;
use crate::delivery::{self, Breaker, Lane, StopReason};
use crate::metrics;

impl Dispatcher {
    /// Brings the lanes and routes to `snapshot`, and opens intake;
    /// `false` when shutting down (nothing applied).
    pub fn sync(&self, snapshot: &Snapshot) -> bool {
        let mut lanes = self
            .lanes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if self.intake() == Intake::Closed {
            // Shutting down: no new lanes (nothing would stop them).
            return false;
        }
        let mut touched = HashSet::new();
        let mut removed = Vec::new();
        lanes.retain(|id, lane| {
            if snapshot.connector(id).is_some() {
                return true;
            }
            touched.insert(lane.current().config.workspace_id.clone());
            removed.push(Arc::clone(lane));
            false
        });
        for config in snapshot.connectors() {
            match lanes.get(&config.id) {
                Some(lane) => {
                    let current = lane.current();
                    if Arc::ptr_eq(&current.config, config) || current.config == *config {
                        continue;
                    }
                    touched.insert(current.config.workspace_id.clone());
                    touched.insert(config.workspace_id.clone());
                    if !lane.update(Arc::clone(config)) {
                        tracing::error!(connector = %config.id, "configuration does not compile; keeping the previous one");
                    }
                }
                None => {
                    let Some((lane, queue)) = Lane::new(
                        Arc::clone(config),
                        self.limits.connector_capacity,
                        Arc::clone(&self.node),
                        self.workspace_budget(&config.workspace_id),
                        Breaker::new(self.delivery.breaker),
                    ) else {
                        tracing::error!(connector = %config.id, partner = %config.partner, "cannot deliver for this connector");
                        continue;
                    };
                    self.delivery.tasks.spawn(delivery::run(
                        Arc::clone(&lane),
                        queue,
                        Arc::clone(&self.delivery),
                    ));
                    touched.insert(config.workspace_id.clone());
                    lanes.insert(config.id.clone(), lane);
                }
            }
        }
        if !touched.is_empty() {
            let mut routes = (**self.routes.load()).clone();
            for workspace in touched {
                let list: Arc<[Arc<Lane>]> = snapshot
                    .workspace(&workspace)
                    .iter()
                    .filter_map(|config| lanes.get(&config.id).cloned())
                    .collect();
                if list.is_empty() {
                    routes.remove(&workspace);
                } else {
                    routes.insert(workspace, list);
                }
            }
            self.routes.store(Arc::new(routes));
        }
        // Stopped only once no route leads to them, so admission does not
        // accept events for them just to drop them.
        for lane in removed {
            lane.stop(StopReason::Removed);
            metrics::forget_connector(&lane.id);
        }
        let _ = self.intake.compare_exchange(
            0,
            1,
            std::sync::atomic::Ordering::AcqRel,
            std::sync::atomic::Ordering::Acquire,
        );
        true
    }
}
