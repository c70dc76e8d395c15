//! Counters in this process, for running without Redis. Same keys, fields,
//! expiry and markers as Redis; nothing survives a restart.

use std::collections::{HashMap, VecDeque};

use eventconnectors_proto::limits::RECENT_FAILURES;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::MarkerTtls;
use crate::batch::{Applied, ConnectorBatch};

#[derive(Debug, Default)]
struct Connector {
    buckets: HashMap<String, (HashMap<String, i64>, Instant)>,
    batches: HashMap<String, Instant>,
    samples: (HashMap<String, String>, Option<Instant>),
    /// Recent failures (newest first), how many were ever pushed, and
    /// when both expire.
    failures: (VecDeque<Vec<u8>>, u64, Option<Instant>),
    tombstone: Option<Instant>,
    /// Entries (batch ids + buckets) after the last pruning: pruning runs
    /// again when they have doubled, so it costs O(1) per write on average.
    pruned_at: usize,
}

impl Connector {
    fn prune_if_grown(&mut self, now: Instant) {
        let entries = self.batches.len() + self.buckets.len();
        if entries < 64 || entries < 2 * self.pruned_at {
            return;
        }
        self.batches.retain(|_, expiry| *expiry > now);
        self.buckets.retain(|_, (_, expiry)| *expiry > now);
        self.pruned_at = self.batches.len() + self.buckets.len();
    }
}

/// In-process counters.
#[derive(Debug, Clone)]
pub struct MemoryCounters {
    connectors: Arc<Mutex<HashMap<String, Connector>>>,
    ttls: MarkerTtls,
}

/// The instant of unix time `at`, seen from `now`.
fn at_unix(now: Instant, at: i64) -> Instant {
    let ahead = at - crate::clock::wall_now();
    now + Duration::from_secs(u64::try_from(ahead).unwrap_or(0))
}

fn alive(expiry: Option<&Instant>, now: Instant) -> bool {
    expiry.is_some_and(|at| *at > now)
}

impl MemoryCounters {
    /// An empty store.
    pub fn new(ttls: MarkerTtls) -> Self {
        Self {
            connectors: Arc::default(),
            ttls,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Connector>) -> T) -> T {
        let mut connectors = self
            .connectors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut connectors)
    }

    pub(super) fn apply(&self, batch_id: &str, batch: &ConnectorBatch) -> Applied {
        let now = Instant::now();
        let ttls = self.ttls;
        self.with(|connectors| {
            let connector = connectors.entry(batch.connector_id.clone()).or_default();
            if alive(connector.tombstone.as_ref(), now) {
                return Applied::Tombstoned;
            }
            connector.prune_if_grown(now);
            if connector
                .batches
                .get(batch_id)
                .is_some_and(|expiry| *expiry > now)
            {
                return Applied::Duplicate;
            }
            connector
                .batches
                .insert(batch_id.to_owned(), now + ttls.dedupe);
            for write in &batch.writes {
                let (fields, expiry) = connector
                    .buckets
                    .entry(write.bucket.to_string())
                    .or_insert_with(|| (HashMap::new(), now));
                if *expiry <= now {
                    fields.clear();
                }
                for (field, by) in &write.fields {
                    let value = fields.entry(field.to_string()).or_default();
                    *value = value.saturating_add(*by);
                }
                *expiry = at_unix(now, write.expire_at);
            }
            if !batch.samples.is_empty() {
                if !alive(connector.samples.1.as_ref(), now) {
                    connector.samples.0.clear();
                }
                connector.samples.0.extend(
                    batch
                        .samples
                        .iter()
                        .map(|(field, message)| (field.to_string(), message.clone())),
                );
                connector.samples.1 = Some(now + ttls.samples);
            }
            if !batch.failures.is_empty() {
                let (list, pushed, expiry) = &mut connector.failures;
                if !alive(expiry.as_ref(), now) {
                    list.clear();
                    *pushed = 0;
                }
                for failure in &batch.failures {
                    list.push_front(failure.clone());
                }
                list.truncate(RECENT_FAILURES);
                *pushed += batch.failures.len() as u64;
                *expiry = Some(now + ttls.samples);
            }
            Applied::Applied
        })
    }

    pub(super) fn read(&self, connector_id: &str, buckets: &[String]) -> Vec<HashMap<String, i64>> {
        let now = Instant::now();
        self.with(|connectors| {
            let connector = connectors.get(connector_id);
            buckets
                .iter()
                .map(|bucket| {
                    connector
                        .and_then(|c| c.buckets.get(bucket))
                        .filter(|(_, expiry)| *expiry > now)
                        .map(|(fields, _)| fields.clone())
                        .unwrap_or_default()
                })
                .collect()
        })
    }

    pub(super) fn samples(&self, connector_id: &str) -> HashMap<String, String> {
        let now = Instant::now();
        self.with(|connectors| {
            connectors
                .get(connector_id)
                .filter(|c| alive(c.samples.1.as_ref(), now))
                .map(|c| c.samples.0.clone())
                .unwrap_or_default()
        })
    }

    pub(super) fn recent_failures(&self, connector_id: &str) -> (u64, Vec<Vec<u8>>) {
        let now = Instant::now();
        self.with(|connectors| {
            connectors
                .get(connector_id)
                .filter(|c| alive(c.failures.2.as_ref(), now))
                .map(|c| (c.failures.1, c.failures.0.iter().cloned().collect()))
                .unwrap_or_default()
        })
    }

    pub(super) fn erase(&self, connector_id: &str) {
        let tombstone: Duration = self.ttls.tombstone;
        self.with(|connectors| {
            connectors.insert(
                connector_id.to_owned(),
                Connector {
                    tombstone: Some(Instant::now() + tombstone),
                    ..Connector::default()
                },
            );
        });
    }
}
