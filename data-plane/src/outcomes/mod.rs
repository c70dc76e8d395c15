//! What became of every accepted event, per connector: recorded as it
//! happens, pre-aggregated, and reported to the stats service.

mod aggregate;
mod recorder;
mod reporter;

pub use aggregate::{Aggregator, OutcomeKey};
pub use recorder::Outcomes;
pub use reporter::{ReporterSettings, report};
