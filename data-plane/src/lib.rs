//! A data-plane node: follows the configuration feed, and (in the delivery
//! issue) ingests raw events and delivers them to partners.

pub mod args;
pub mod config_feed;
pub mod delivery;
pub mod ingest;
pub mod node;
pub mod outcomes;
pub mod partners;
pub mod transform;
