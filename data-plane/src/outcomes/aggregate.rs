//! Outcomes pre-aggregated per (connector, hour, outcome, category, partner
//! code, target field, reason), sealed into batches with unique ids, and
//! kept until the stats service acknowledges them, so a re-sent batch is
//! counted once there and nothing is lost while it is away. What is kept is
//! bounded: past the bound the oldest batch is dropped and its counts are
//! added to an overflow counter, so a loss is never silent.

use std::collections::{HashMap, VecDeque};

use eventconnectors_proto::v1::{ErrorCategory, Outcome, OutcomeBatch, OutcomeCount};

/// What one count is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OutcomeKey {
    /// The connector.
    pub connector_id: String,
    /// Start of the hour (unix seconds).
    pub hour: i64,
    /// The outcome.
    pub outcome: Outcome,
    /// For FAILED.
    pub category: ErrorCategory,
    /// For PARTNER_ERROR.
    pub partner_code: String,
    /// For TRANSFORMATION_ERROR.
    pub target_field: String,
    /// For TRANSFORMATION_ERROR.
    pub reason: String,
}

/// Pending outcomes of one node.
#[derive(Debug)]
pub struct Aggregator {
    node_id: String,
    open: HashMap<OutcomeKey, (u64, String)>,
    sealed: VecDeque<OutcomeBatch>,
    max_sealed: usize,
    overflow: u64,
}

impl Aggregator {
    /// An aggregator keeping at most `max_sealed` unacknowledged batches.
    pub fn new(node_id: &str, max_sealed: usize) -> Self {
        Self {
            node_id: node_id.to_owned(),
            open: HashMap::new(),
            sealed: VecDeque::new(),
            max_sealed: max_sealed.max(1),
            overflow: 0,
        }
    }

    /// Counts `count` events with outcome `key`; `sample` is kept as the
    /// group's message (the first one seen in the batch).
    pub fn record(&mut self, key: OutcomeKey, count: u64, sample: &str) {
        let entry = self
            .open
            .entry(key)
            .or_insert_with(|| (0, sample.to_owned()));
        entry.0 += count;
    }

    /// Seals what was recorded into a new batch (none if nothing was) and
    /// returns it.
    pub fn seal(&mut self) -> Option<&OutcomeBatch> {
        if self.open.is_empty() {
            return None;
        }
        let counts = self
            .open
            .drain()
            .map(|(key, (count, sample_message))| OutcomeCount {
                connector_id: key.connector_id,
                bucket_start: Some(prost_types::Timestamp {
                    seconds: key.hour,
                    nanos: 0,
                }),
                outcome: key.outcome as i32,
                category: key.category as i32,
                partner_code: key.partner_code,
                target_field: key.target_field,
                reason: key.reason,
                count,
                sample_message,
            })
            .collect();
        if self.sealed.len() == self.max_sealed
            && let Some(dropped) = self.sealed.pop_front()
        {
            let lost: u64 = dropped.counts.iter().map(|c| c.count).sum();
            self.overflow += lost;
            tracing::error!(batch_id = %dropped.batch_id, lost, "outcome buffer full: oldest unacknowledged batch dropped");
        }
        self.sealed.push_back(OutcomeBatch {
            batch_id: format!("{}-{}", self.node_id, uuid::Uuid::now_v7().simple()),
            node_id: self.node_id.clone(),
            counts,
        });
        self.sealed.back()
    }

    /// Batches not yet acknowledged, oldest first (to send or re-send).
    pub fn unacknowledged(&self) -> impl Iterator<Item = &OutcomeBatch> {
        self.sealed.iter()
    }

    /// Forgets an acknowledged batch.
    pub fn acknowledge(&mut self, batch_id: &str) {
        self.sealed.retain(|batch| batch.batch_id != batch_id);
    }

    /// Outcomes lost to the bound since start.
    pub fn overflow(&self) -> u64 {
        self.overflow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(connector: &str, outcome: Outcome) -> OutcomeKey {
        OutcomeKey {
            connector_id: connector.into(),
            hour: 1_764_432_000,
            outcome,
            category: ErrorCategory::Unspecified,
            partner_code: String::new(),
            target_field: String::new(),
            reason: String::new(),
        }
    }

    #[test]
    fn aggregates_until_sealed_and_keeps_until_acknowledged() {
        let mut outcomes = Aggregator::new("node-1", 10);
        assert!(outcomes.seal().is_none(), "nothing recorded, no batch");
        for _ in 0..5 {
            outcomes.record(key("c1", Outcome::Delivered), 2, "");
        }
        outcomes.record(key("c1", Outcome::Dropped), 1, "");
        let failed = OutcomeKey {
            category: ErrorCategory::Timeout,
            ..key("c2", Outcome::Failed)
        };
        outcomes.record(failed.clone(), 1, "no answer within 3s");
        outcomes.record(failed, 1, "a later message");
        let batch = outcomes.seal().expect("batch").clone();
        assert!(batch.batch_id.starts_with("node-1-"));
        let mut counts: Vec<(String, i32, u64, String)> = batch
            .counts
            .iter()
            .map(|c| {
                (
                    c.connector_id.clone(),
                    c.outcome,
                    c.count,
                    c.sample_message.clone(),
                )
            })
            .collect();
        counts.sort();
        assert_eq!(
            counts,
            [
                ("c1".into(), Outcome::Delivered as i32, 10, String::new()),
                ("c1".into(), Outcome::Dropped as i32, 1, String::new()),
                (
                    "c2".into(),
                    Outcome::Failed as i32,
                    2,
                    "no answer within 3s".into()
                ),
            ]
        );
        outcomes.record(key("c1", Outcome::Delivered), 1, "");
        let second = outcomes.seal().expect("batch").batch_id.clone();
        assert_ne!(second, batch.batch_id, "every batch has its own id");
        assert_eq!(outcomes.unacknowledged().count(), 2);
        outcomes.acknowledge(&batch.batch_id);
        let left: Vec<_> = outcomes
            .unacknowledged()
            .map(|b| b.batch_id.clone())
            .collect();
        assert_eq!(left, [second]);
    }

    #[test]
    fn a_full_buffer_drops_the_oldest_batch_and_counts_it() {
        let mut outcomes = Aggregator::new("n", 2);
        for count in [3, 5, 7] {
            outcomes.record(key("c", Outcome::Delivered), count, "");
            outcomes.seal();
        }
        assert_eq!(outcomes.overflow(), 3);
        let kept: Vec<u64> = outcomes
            .unacknowledged()
            .map(|b| b.counts[0].count)
            .collect();
        assert_eq!(kept, [5, 7]);
    }
}
