//! What the benchmarks share: positional arguments and percentiles.

use std::time::Duration;

/// The `position`-th positional argument (flags skipped), or `default`.
pub fn arg(position: usize, default: usize) -> usize {
    std::env::args()
        .filter(|a| !a.starts_with('-'))
        .nth(position)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// The `p` percentile (0.0-1.0) of sorted, non-empty `sorted`.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}
