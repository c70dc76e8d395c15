//! A data-plane node: follows the configuration feed, ingests raw events,
//! routes them to the connectors of their workspace, transforms and delivers
//! them to partners, and reports every outcome to the stats service.
//!
//! The modules follow an event: [`ingest`] takes it (an [`event`]),
//! [`routing`] picks the connectors it goes to, [`transform`] shapes it for
//! each, [`delivery`] sends it through each connector's lane, [`outcomes`]
//! counts what became of it. [`config_feed`] keeps the connectors current;
//! [`node`] runs it all. Each depends only on those after it (and on the
//! leaves: `event`, `metrics`, `args`), never back.
//!
//! In the durable mode [`event_log`] sits between ingest and routing:
//! ingest stores events in a JetStream stream, and every node takes them
//! from there into its lanes, each holding a receipt until the event's
//! outcomes are final and reported.

pub mod args;
pub mod config_feed;
pub mod delivery;
pub mod event;
pub mod event_log;
pub mod ingest;
pub mod metrics;
pub mod node;
pub mod outcomes;
pub mod routing;
