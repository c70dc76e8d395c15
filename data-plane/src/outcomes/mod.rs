//! What became of every accepted event, per connector: recorded as it
//! happens, pre-aggregated, and reported to the stats service. In the
//! durable mode an event's outcomes wait on its [`Receipt`] until all its
//! connectors are done, and are counted together with its acknowledgement.

mod aggregate;
pub mod receipt;
mod recorder;
mod reporter;

pub use aggregate::{Aggregator, OutcomeKey};
pub use receipt::Receipt;
pub use recorder::Outcomes;
pub use reporter::{ReporterSettings, report};
