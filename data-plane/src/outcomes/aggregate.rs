//! Outcomes pre-aggregated per (connector, hour, outcome, category, partner
//! code, target field, reason), sealed into batches with unique ids, and
//! kept until the stats service acknowledges them, so a re-sent batch is
//! counted once there and nothing is lost while it is away. What is kept is
//! bounded: past the bound the oldest batch is dropped and its counts are
//! added to an overflow counter, so a loss is never silent.
//!
//! Beside the counts it keeps the most recent failed events of each
//! connector (at most `RECENT_FAILURES` each between two seals), which go
//! out with the counts and become the connector's recent failures.
//!
//! In the durable mode the aggregate also holds the receipts of events
//! whose outcomes are all recorded: an event leaves the log only once every
//! batch that may count it is acknowledged (see [`Aggregator::settled`]).

use std::collections::{HashMap, VecDeque};

use eventconnectors_proto::limits::{MAX_OUTCOME_BATCH_BYTES, MAX_SAMPLE_CHARS, RECENT_FAILURES};
use eventconnectors_proto::v1::{ErrorCategory, FailedEvent, Outcome, OutcomeBatch, OutcomeCount};
use prost::Message;

use super::receipt::Receipt;

/// Room kept in a batch for its id and node id.
const BATCH_HEADROOM_BYTES: usize = 1024;

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
    /// The newest failed events per connector since the last seal, oldest
    /// first.
    failures: HashMap<String, VecDeque<FailedEvent>>,
    /// Seals so far: the generation of what is open now.
    generation: u64,
    /// Receipts of events ended since the last seal.
    ended: Vec<Receipt>,
    /// Receipts waiting for the batches of their generation and before.
    awaiting: VecDeque<(u64, Vec<Receipt>)>,
    /// Batches not yet acknowledged, with their generation.
    sealed: VecDeque<(u64, OutcomeBatch)>,
    max_sealed: usize,
    overflow: u64,
    rejected: u64,
    /// Largest encoded batch sealed.
    max_batch_bytes: usize,
}

impl Aggregator {
    /// An aggregator keeping at most `max_sealed` unacknowledged batches.
    pub fn new(node_id: &str, max_sealed: usize) -> Self {
        Self {
            node_id: node_id.to_owned(),
            open: HashMap::new(),
            failures: HashMap::new(),
            generation: 0,
            ended: Vec::new(),
            awaiting: VecDeque::new(),
            sealed: VecDeque::new(),
            max_sealed: max_sealed.max(1),
            overflow: 0,
            rejected: 0,
            max_batch_bytes: MAX_OUTCOME_BATCH_BYTES,
        }
    }

    /// The same aggregator sealing batches of at most `bytes` encoded (for
    /// tests of the split).
    pub fn with_max_batch_bytes(mut self, bytes: usize) -> Self {
        self.max_batch_bytes = bytes.max(BATCH_HEADROOM_BYTES + 1);
        self
    }

    /// Counts `count` events with outcome `key`; `sample` is kept as the
    /// group's message (the first one seen in the batch, at most
    /// `MAX_SAMPLE_CHARS` characters).
    pub fn record(&mut self, key: OutcomeKey, count: u64, sample: &str) {
        let entry = self
            .open
            .entry(key)
            .or_insert_with(|| (0, sample.chars().take(MAX_SAMPLE_CHARS).collect()));
        entry.0 += count;
    }

    /// Lists `failure` among its connector's recent failures (the oldest
    /// listed since the last seal goes past [`RECENT_FAILURES`]).
    pub fn list_failure(&mut self, failure: FailedEvent) {
        let listed = self
            .failures
            .entry(failure.connector_id.clone())
            .or_default();
        if listed.len() == RECENT_FAILURES {
            listed.pop_front();
        }
        listed.push_back(failure);
    }

    /// An event whose outcomes are all recorded (in this generation or
    /// an earlier one): it may leave the log once they are reported.
    pub fn ended(&mut self, receipt: Receipt) {
        self.ended.push(receipt);
    }

    /// Receipts whose outcomes are reported: every batch of their
    /// generation and before is acknowledged (or dropped by the bound,
    /// and counted as lost). With `reported` false (no stats service) all
    /// sealed ones are.
    pub fn settled(&mut self, reported: bool) -> Vec<Receipt> {
        let oldest_unacknowledged = match reported {
            true => self.sealed.iter().map(|(generation, _)| *generation).min(),
            false => None,
        };
        let mut settled = Vec::new();
        while let Some((generation, _)) = self.awaiting.front()
            && oldest_unacknowledged.is_none_or(|oldest| *generation < oldest)
        {
            let (_, receipts) = self.awaiting.pop_front().expect("front exists");
            settled.extend(receipts);
        }
        settled
    }

    /// Seals what was recorded into new batches, each under the stats
    /// service's size limit (none if nothing was recorded), and returns
    /// how many.
    pub fn seal(&mut self) -> usize {
        let generation = self.generation;
        self.generation += 1;
        if !self.ended.is_empty() {
            self.awaiting
                .push_back((generation, std::mem::take(&mut self.ended)));
        }
        if self.open.is_empty() && self.failures.is_empty() {
            return 0;
        }
        let counts: Vec<OutcomeCount> = self
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
        let failures: Vec<FailedEvent> = self
            .failures
            .drain()
            .flat_map(|(_, listed)| listed)
            .collect();
        let budget = self.max_batch_bytes - BATCH_HEADROOM_BYTES;
        let mut batches = 0;
        let mut part = (Vec::new(), Vec::new());
        let mut part_bytes = 0;
        let items = counts
            .into_iter()
            .map(Item::Count)
            .chain(failures.into_iter().map(Item::Failure));
        for item in items {
            // An item's share of the batch: itself plus its field tag and
            // length prefix.
            let bytes = item.encoded_len() + 8;
            if part_bytes > 0 && part_bytes + bytes > budget {
                let (counts, failures) = std::mem::take(&mut part);
                self.push(generation, counts, failures);
                batches += 1;
                part_bytes = 0;
            }
            part_bytes += bytes;
            match item {
                Item::Count(count) => part.0.push(count),
                Item::Failure(failure) => part.1.push(failure),
            }
        }
        self.push(generation, part.0, part.1);
        batches + 1
    }

    fn push(&mut self, generation: u64, counts: Vec<OutcomeCount>, failures: Vec<FailedEvent>) {
        if self.sealed.len() == self.max_sealed
            && let Some((_, dropped)) = self.sealed.pop_front()
        {
            let lost: u64 = dropped.counts.iter().map(|c| c.count).sum();
            self.overflow += lost;
            tracing::error!(batch_id = %dropped.batch_id, lost, "outcome buffer full: oldest unacknowledged batch dropped");
        }
        let batch = OutcomeBatch {
            batch_id: format!("{}-{}", self.node_id, uuid::Uuid::now_v7().simple()),
            node_id: self.node_id.clone(),
            counts,
            failures,
        };
        self.sealed.push_back((generation, batch));
    }

    /// Batches not yet acknowledged, oldest first (to send or re-send).
    pub fn unacknowledged(&self) -> impl Iterator<Item = &OutcomeBatch> {
        self.sealed.iter().map(|(_, batch)| batch)
    }

    /// Forgets an acknowledged batch.
    pub fn acknowledge(&mut self, batch_id: &str) {
        self.sealed.retain(|(_, batch)| batch.batch_id != batch_id);
    }

    /// Forgets a batch the stats service refused as invalid; returns the
    /// outcomes it held (lost, and counted as such).
    pub fn reject(&mut self, batch_id: &str) -> u64 {
        let lost: u64 = self
            .unacknowledged()
            .filter(|batch| batch.batch_id == batch_id)
            .flat_map(|batch| &batch.counts)
            .map(|count| count.count)
            .sum();
        self.acknowledge(batch_id);
        self.rejected += lost;
        lost
    }

    /// Outcomes lost to the bound since start.
    pub fn overflow(&self) -> u64 {
        self.overflow
    }

    /// Outcomes lost because the stats service refused their batch.
    pub fn rejected(&self) -> u64 {
        self.rejected
    }
}

/// What a batch carries.
enum Item {
    Count(OutcomeCount),
    Failure(FailedEvent),
}

impl Item {
    fn encoded_len(&self) -> usize {
        match self {
            Item::Count(count) => count.encoded_len(),
            Item::Failure(failure) => failure.encoded_len(),
        }
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
        assert_eq!(outcomes.seal(), 0, "nothing recorded, no batch");
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
        assert_eq!(outcomes.seal(), 1);
        let batch = outcomes.unacknowledged().last().expect("batch").clone();
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
        outcomes.seal();
        let second = outcomes
            .unacknowledged()
            .last()
            .expect("batch")
            .batch_id
            .clone();
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
    fn the_newest_failures_of_each_connector_go_out_with_the_counts() {
        let mut outcomes = Aggregator::new("n", 10).with_max_batch_bytes(16 * 1024);
        let failure = |connector: &str, n: usize| FailedEvent {
            connector_id: connector.into(),
            event_id: format!("e{n}"),
            message: "x".repeat(300),
            ..FailedEvent::default()
        };
        for n in 0..RECENT_FAILURES + 20 {
            outcomes.list_failure(failure("busy", n));
        }
        outcomes.list_failure(failure("quiet", 0));
        assert!(outcomes.seal() > 1, "split under the size limit");
        let listed: Vec<FailedEvent> = outcomes
            .unacknowledged()
            .inspect(|batch| assert!(batch.encoded_len() <= 16 * 1024))
            .flat_map(|batch| batch.failures.clone())
            .collect();
        let busy: Vec<&str> = listed
            .iter()
            .filter(|f| f.connector_id == "busy")
            .map(|f| f.event_id.as_str())
            .collect();
        assert_eq!(busy.len(), RECENT_FAILURES, "the oldest 20 went");
        assert_eq!(busy[0], "e20", "oldest first");
        assert_eq!(
            busy[RECENT_FAILURES - 1],
            format!("e{}", RECENT_FAILURES + 19)
        );
        assert_eq!(
            listed.iter().filter(|f| f.connector_id == "quiet").count(),
            1
        );
        assert_eq!(outcomes.seal(), 0, "listed once");
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

    #[test]
    fn batches_are_split_under_the_size_limit_and_samples_capped() {
        let mut outcomes = Aggregator::new("n", 100).with_max_batch_bytes(16 * 1024);
        let huge = "x".repeat(64 * 1024);
        for connector in 0..200 {
            let failed = OutcomeKey {
                category: ErrorCategory::Other,
                ..key(&format!("connector-{connector}"), Outcome::Failed)
            };
            outcomes.record(failed, 1, &huge);
        }
        let sealed = outcomes.seal();
        assert!(sealed > 1, "split into {sealed} batches");
        let batches: Vec<_> = outcomes.unacknowledged().cloned().collect();
        assert_eq!(batches.len(), sealed);
        for batch in &batches {
            assert!(
                batch.encoded_len() <= 16 * 1024,
                "{} bytes",
                batch.encoded_len()
            );
            for count in &batch.counts {
                assert_eq!(count.sample_message.chars().count(), MAX_SAMPLE_CHARS);
            }
        }
        let total: usize = batches.iter().map(|b| b.counts.len()).sum();
        assert_eq!(total, 200, "every group in exactly one batch");
        let first = batches[0].batch_id.clone();
        let held: u64 = batches[0].counts.iter().map(|c| c.count).sum();
        assert_eq!(outcomes.reject(&first), held);
        assert_eq!(outcomes.rejected(), held);
        assert_eq!(outcomes.unacknowledged().count(), sealed - 1);
    }
}
