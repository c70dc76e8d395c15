//! A data-plane node: follows the configuration feed, ingests raw events,
//! routes them to the connectors of their workspace, transforms and delivers
//! them to partners, and reports every outcome to the stats service.

pub mod args;
pub mod config_feed;
pub mod delivery;
pub mod dispatch;
pub mod ingest;
pub mod metrics;
pub mod node;
pub mod outcomes;
pub mod partners;
pub mod transform;
pub mod upstream;
