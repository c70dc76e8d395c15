//! The stats service's Prometheus metrics: what intake applied, what
//! queries cost, and store failures.

use std::net::SocketAddr;
use std::time::Duration;

use metrics_exporter_prometheus::BuildError;

use crate::batch::Applied;

const BATCHES: &str = "eventconnectors_stats_batches_total";
const PARTS: &str = "eventconnectors_stats_connector_parts_total";
const COUNTS: &str = "eventconnectors_stats_counts_total";
const STORE_ERRORS: &str = "eventconnectors_stats_store_errors_total";
const QUERY_SECONDS: &str = "eventconnectors_stats_query_duration_seconds";
const WRITE_GROUP: &str = "eventconnectors_stats_write_group_batches";

/// Bucket bounds of the service's histograms.
pub const HISTOGRAMS: &[(&str, &[f64])] = &[
    (
        QUERY_SECONDS,
        &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
    ),
    (WRITE_GROUP, &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]),
];

/// Serves `/metrics` on `address` (process-wide; call once).
pub fn install(address: SocketAddr) -> Result<(), BuildError> {
    server_kit::metrics::install(address, HISTOGRAMS)
}

/// An outcome batch refused as invalid (acknowledged as such, not counted).
pub fn batch_refused() {
    metrics::counter!(BATCHES, "result" => "invalid").increment(1);
}

/// An outcome batch with `counts` counts, split into `parts`.
pub fn batch(counts: usize, parts: &[Applied]) {
    let duplicate = !parts.is_empty() && parts.iter().all(|p| *p == Applied::Duplicate);
    let result = if duplicate { "duplicate" } else { "applied" };
    metrics::counter!(BATCHES, "result" => result).increment(1);
    if !duplicate {
        metrics::counter!(COUNTS).increment(counts as u64);
    }
    for part in parts {
        let result = match part {
            Applied::Applied => "applied",
            Applied::Duplicate => "duplicate",
            Applied::Tombstoned => "tombstoned",
        };
        metrics::counter!(PARTS, "result" => result).increment(1);
    }
}

/// One script written to Redis for `batches` outcome batches (group commit).
pub fn write_group(batches: usize) {
    metrics::histogram!(WRITE_GROUP).record(batches as f64);
}

/// The counter store failed.
pub fn store_error() {
    metrics::counter!(STORE_ERRORS).increment(1);
}

/// One GetConnectorStats answered.
pub fn query(took: Duration) {
    metrics::histogram!(QUERY_SECONDS).record(took.as_secs_f64());
}
