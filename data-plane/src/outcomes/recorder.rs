//! The one place outcomes are recorded: each call counts events of one
//! connector into the pending aggregate (for the stats service) and into the
//! node's Prometheus counters. Failed events are also listed one by one
//! (the newest of each connector), for its recent failures.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use eventconnectors_proto::limits::{RECENT_FAILURES, failed_event_id, failure_message};
use eventconnectors_proto::v1::{ErrorCategory, FailedEvent, Outcome};

use super::aggregate::{Aggregator, OutcomeKey};
use partners::adapter::Failure;

use super::receipt::Receipt;
use crate::metrics;
use partners::transform::TransformError;

/// Shared handle on the node's pending outcomes.
#[derive(Debug, Clone)]
pub struct Outcomes {
    pending: Arc<Mutex<Aggregator>>,
}

fn hour_now() -> i64 {
    let seconds = timestamp_now().seconds;
    seconds - seconds.rem_euclid(3600)
}

fn timestamp_now() -> prost_types::Timestamp {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    prost_types::Timestamp {
        seconds: now.as_secs() as i64,
        nanos: now.subsec_nanos() as i32,
    }
}

fn key(connector_id: &str, outcome: Outcome) -> OutcomeKey {
    OutcomeKey {
        connector_id: connector_id.to_owned(),
        hour: hour_now(),
        outcome,
        category: ErrorCategory::Unspecified,
        partner_code: String::new(),
        target_field: String::new(),
        reason: String::new(),
    }
}

impl Outcomes {
    /// Outcomes of node `node_id`, keeping at most `max_batches`
    /// unacknowledged batches.
    pub fn new(node_id: &str, max_batches: usize) -> Self {
        Self {
            pending: Arc::new(Mutex::new(Aggregator::new(node_id, max_batches))),
        }
    }

    /// The pending aggregate (for the reporter).
    pub fn pending(&self) -> MutexGuard<'_, Aggregator> {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts `count` events with outcome `key`: at once, or for events
    /// from the log on their `receipt` (counted when it ends).
    fn record(&self, key: OutcomeKey, count: usize, sample: &str, receipt: Option<&Receipt>) {
        if count == 0 {
            return;
        }
        match receipt {
            Some(receipt) => receipt.hold(key, count as u64, sample),
            None => self.pending().record(key, count as u64, sample),
        }
    }

    /// `count` events reached the partner.
    pub fn delivered(
        &self,
        connector_id: &str,
        partner: &'static str,
        count: usize,
        receipt: Option<&Receipt>,
    ) {
        metrics::outcome(
            partner,
            Outcome::Delivered,
            ErrorCategory::Unspecified,
            count,
        );
        self.record(key(connector_id, Outcome::Delivered), count, "", receipt);
    }

    /// `count` events failed for good.
    pub fn failed(
        &self,
        connector_id: &str,
        partner: &'static str,
        failure: &Failure,
        count: usize,
        receipt: Option<&Receipt>,
    ) {
        metrics::outcome(partner, Outcome::Failed, failure.category, count);
        let key = OutcomeKey {
            category: failure.category,
            partner_code: failure.partner_code.clone(),
            ..key(connector_id, Outcome::Failed)
        };
        self.record(key, count, &failure.message, receipt);
    }

    /// One event could not be transformed for the connector.
    pub fn transformation_error(
        &self,
        connector_id: &str,
        partner: &'static str,
        error: &TransformError,
        event_id: &str,
        receipt: Option<&Receipt>,
    ) {
        metrics::outcome(
            partner,
            Outcome::TransformationError,
            ErrorCategory::Unspecified,
            1,
        );
        let key = OutcomeKey {
            target_field: error.target_field.clone(),
            reason: error.reason.clone(),
            ..key(connector_id, Outcome::TransformationError)
        };
        let message = error.to_string();
        self.pending().list_failure(FailedEvent {
            connector_id: connector_id.to_owned(),
            event_id: failed_event_id(event_id).to_owned(),
            at: Some(timestamp_now()),
            outcome: Outcome::TransformationError as i32,
            target_field: error.target_field.clone(),
            reason: error.reason.clone(),
            attempts: 0,
            message: failure_message(&message).to_owned(),
            ..FailedEvent::default()
        });
        self.record(key, 1, &format!("event {event_id}: {message}"), receipt);
    }

    /// Lists the events `event_ids`, failed for good with `failure` after
    /// `attempts` requests, among the connector's recent failures (only the
    /// newest [`RECENT_FAILURES`] matter).
    pub fn list_failed<'a>(
        &self,
        connector_id: &str,
        failure: &Failure,
        attempts: u32,
        event_ids: impl Iterator<Item = &'a str>,
    ) {
        let event_ids: Vec<&str> = event_ids.collect();
        let newest = &event_ids[event_ids.len().saturating_sub(RECENT_FAILURES)..];
        if newest.is_empty() {
            return;
        }
        let at = timestamp_now();
        let message = failure_message(&failure.message);
        let mut pending = self.pending();
        for event_id in newest {
            pending.list_failure(FailedEvent {
                connector_id: connector_id.to_owned(),
                event_id: failed_event_id(event_id).to_owned(),
                at: Some(at),
                outcome: Outcome::Failed as i32,
                category: failure.category as i32,
                partner_code: failure.partner_code.clone(),
                attempts,
                message: message.to_owned(),
                ..FailedEvent::default()
            });
        }
    }

    /// One share of a logged message ends, its outcome held on the
    /// receipt: at the last share the outcomes held are counted and the
    /// message waits for them to be reported, or it goes back to the log
    /// (its outcomes forgotten: the next node counts them) if a connector
    /// handed an event back.
    pub fn settle(&self, receipt: Option<&Receipt>) {
        let Some(receipt) = receipt else { return };
        if !receipt.end_share() {
            return;
        }
        let held = receipt.take_outcomes();
        if receipt.handed_back() {
            receipt.give_back();
            return;
        }
        let mut pending = self.pending();
        for (key, count, sample) in held {
            pending.record(key, count, &sample);
        }
        pending.ended(receipt.clone());
    }

    /// One connector's share of a logged event ends without an outcome:
    /// the node stops, and the event goes back to the log for another.
    pub fn hand_back(&self, receipt: Option<&Receipt>) {
        if let Some(receipt) = receipt {
            receipt.mark_handed_back();
            self.settle(Some(receipt));
        }
    }

    /// Acknowledges to the log the events whose outcomes are reported
    /// (`reported` false: there is no stats service, sealed is enough).
    pub fn release_settled(&self, reported: bool) {
        let settled = self.pending().settled(reported);
        for receipt in &settled {
            receipt.acknowledge();
        }
    }

    /// `count` accepted events were dropped because the connector was
    /// deactivated or deleted.
    pub fn dropped(
        &self,
        connector_id: &str,
        partner: &'static str,
        count: usize,
        receipt: Option<&Receipt>,
    ) {
        metrics::outcome(partner, Outcome::Dropped, ErrorCategory::Unspecified, count);
        self.record(key(connector_id, Outcome::Dropped), count, "", receipt);
    }
}
