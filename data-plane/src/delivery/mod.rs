//! Delivery: each connector's lane (its queue, bounded, and its breaker),
//! batching, the HTTP client, attempts with retries and the circuit
//! breaker, and the outcome of every event.

mod attempts;
pub mod breaker;
mod lane;
pub mod retry;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::task::TaskTracker;

pub use attempts::end_stopped;
pub use breaker::{Breaker, BreakerSettings};
pub use lane::{ByteBudget, Current, Full, Lane, NodeDepth, Queued, StopReason, weight};
pub use partner_client::PartnerClient;
pub use retry::RetryPolicy;
pub use worker::run;

use partners::base_urls::BaseUrls;

use crate::outcomes::Outcomes;

/// What every connector's delivery shares.
#[derive(Debug)]
pub struct Delivery {
    /// The HTTP client (one keep-alive pool for the node).
    pub client: PartnerClient,
    /// Where outcomes go.
    pub outcomes: Outcomes,
    /// Retries.
    pub retry: RetryPolicy,
    /// Breaker settings for new connectors.
    pub breaker: BreakerSettings,
    /// Partner base URLs.
    pub base_urls: BaseUrls,
    /// How long a batch waits to fill.
    pub linger: Duration,
    /// Requests in flight per connector.
    pub concurrency: usize,
    /// Every delivery task, so shutdown can wait for them.
    pub tasks: TaskTracker,
}

/// Shared delivery context.
pub type SharedDelivery = Arc<Delivery>;
