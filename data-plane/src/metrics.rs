//! The node's Prometheus metrics: names, labels and the `/metrics`
//! endpoint. Everything is counted per batch, not per event, so metrics
//! cost nothing measurable on the event path.

use std::net::SocketAddr;
use std::time::Duration;

use eventconnectors_proto::v1::{ErrorCategory, Outcome, RejectReason};
use metrics_exporter_prometheus::BuildError;

const EVENTS_RECEIVED: &str = "eventconnectors_events_received_total";
const EVENTS_REJECTED: &str = "eventconnectors_events_rejected_total";
const OUTCOMES: &str = "eventconnectors_outcomes_total";
const QUEUE_DEPTH: &str = "eventconnectors_queue_depth";
const BREAKER_STATE: &str = "eventconnectors_breaker_state";
const ATTEMPT_SECONDS: &str = "eventconnectors_attempt_duration_seconds";
const OUTCOME_OVERFLOW: &str = "eventconnectors_outcomes_lost_total";
const OUTCOMES_REJECTED: &str = "eventconnectors_outcomes_rejected_total";
const CONFIG_CONNECTED: &str = "eventconnectors_config_connected";

/// Bucket bounds of the node's histograms.
pub const HISTOGRAMS: &[(&str, &[f64])] = &[(
    ATTEMPT_SECONDS,
    &[
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    ],
)];

/// Serves `/metrics` on `address` (process-wide; call once).
pub fn install(address: SocketAddr) -> Result<(), BuildError> {
    server_kit::metrics::install(address, HISTOGRAMS)
}

/// Events received in IngestRequests (accepted or not).
pub fn received(count: usize) {
    metrics::counter!(EVENTS_RECEIVED).increment(count as u64);
}

/// Events not accepted, by reason.
pub fn rejected(reason: RejectReason, count: usize) {
    metrics::counter!(EVENTS_REJECTED, "reason" => reason.as_str_name()).increment(count as u64);
}

/// Final outcomes, by partner, outcome and failure category.
pub fn outcome(partner: &'static str, outcome: Outcome, category: ErrorCategory, count: usize) {
    metrics::counter!(
        OUTCOMES,
        "partner" => partner,
        "outcome" => outcome.as_str_name(),
        "category" => category.as_str_name(),
    )
    .increment(count as u64);
}

/// How long one request to a partner took, whatever its result.
pub fn attempt(partner: &'static str, took: Duration) {
    metrics::histogram!(ATTEMPT_SECONDS, "partner" => partner).record(took.as_secs_f64());
}

/// Events waiting or in flight for a connector.
pub fn queue_depth(connector_id: &str, depth: usize) {
    metrics::gauge!(QUEUE_DEPTH, "connector" => connector_id.to_owned()).set(depth as f64);
}

/// A connector's breaker: 0 closed, 1 half-open, 2 open.
pub fn breaker_state(connector_id: &str, state: f64) {
    metrics::gauge!(BREAKER_STATE, "connector" => connector_id.to_owned()).set(state);
}

/// A connector is gone: its series stop.
pub fn forget_connector(connector_id: &str) {
    queue_depth(connector_id, 0);
    breaker_state(connector_id, 0.0);
}

/// Outcomes lost because the stats service refused their batch as invalid.
pub fn outcomes_rejected(count: u64) {
    metrics::counter!(OUTCOMES_REJECTED).absolute(count);
}

/// Outcomes lost because the stats service was away too long.
pub fn outcomes_lost(count: u64) {
    metrics::counter!(OUTCOME_OVERFLOW).absolute(count);
}

/// Whether a configuration stream to the control plane is open (1) or not
/// (0): a node keeps its last good configuration while this is 0.
pub fn config_connected(connected: bool) {
    metrics::gauge!(CONFIG_CONNECTED).set(if connected { 1.0 } else { 0.0 });
}

const LOG_APPENDED: &str = "eventconnectors_event_log_appended_total";
const LOG_DUPLICATES: &str = "eventconnectors_event_log_duplicates_total";
const LOG_REDELIVERED: &str = "eventconnectors_event_log_redelivered_total";
const LOG_HANDED_BACK: &str = "eventconnectors_event_log_handed_back_total";
const LOG_GAVE_UP: &str = "eventconnectors_event_log_gave_up_total";
const LOG_REACKNOWLEDGED: &str = "eventconnectors_event_log_reacknowledged_total";
const LOG_HELD: &str = "eventconnectors_event_log_held";
const LOG_CONNECTED: &str = "eventconnectors_event_log_connected";

/// Durable mode: events stored in the log by this node's ingest.
pub fn appended(count: usize) {
    metrics::counter!(LOG_APPENDED).increment(count as u64);
}

/// Durable mode: events the log already had (re-sent within the
/// deduplication window), accepted without a second copy.
pub fn duplicates(count: usize) {
    metrics::counter!(LOG_DUPLICATES).increment(count as u64);
}

/// Durable mode: events this node took that another node (or this one)
/// had held before.
pub fn redelivered(count: usize) {
    metrics::counter!(LOG_REDELIVERED).increment(count as u64);
}

/// Durable mode: events of messages redelivered after this node had ended
/// them (the acknowledgement was lost), acknowledged again, not resent.
pub fn reacknowledged(count: usize) {
    metrics::counter!(LOG_REACKNOWLEDGED).increment(count as u64);
}

/// Durable mode: events given back to the log for another node.
pub fn handed_back(count: usize) {
    metrics::counter!(LOG_HANDED_BACK).increment(count as u64);
}

/// Durable mode: events delivered to nodes too many times, counted FAILED.
pub fn gave_up(count: usize) {
    metrics::counter!(LOG_GAVE_UP).increment(count as u64);
}

/// Durable mode: events the node holds (taken, not yet acknowledged).
pub fn held(count: usize) {
    metrics::gauge!(LOG_HELD).set(count as f64);
}

/// Durable mode: whether the node is connected to the event log.
pub fn log_connected(connected: bool) {
    metrics::gauge!(LOG_CONNECTED).set(if connected { 1.0 } else { 0.0 });
}
