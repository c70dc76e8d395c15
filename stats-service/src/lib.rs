//! The stats service: delivery outcomes from data-plane nodes into
//! time-bucketed counters (Redis, or in process), and per-connector
//! statistics over presets and custom ranges.

pub mod api;
pub mod args;
pub mod batch;
pub mod clock;
pub mod counters;
pub mod fields;
pub mod intake;
pub mod metrics;
pub mod named_lists;
pub mod query;
pub mod ranges;

use std::future::Future;

use eventconnectors_proto::v1::stats_service_server::{self, StatsServiceServer};
use server_kit::auth::{BearerAuth, EmptyToken};
use server_kit::{serving, shutdown};
use tokio::net::TcpListener;

use crate::api::StatsApi;
use crate::args::Args;
use crate::clock::Clock;
use crate::counters::{CounterError, Counters, MarkerTtls, MemoryCounters, RedisCounters};
use crate::ranges::Retention;

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A token is unusable.
    #[error(transparent)]
    Token(#[from] EmptyToken),
    /// Redis could not be reached.
    #[error(transparent)]
    Counters(#[from] CounterError),
    /// The listen address could not be bound.
    #[error("cannot listen: {0}")]
    Bind(#[from] std::io::Error),
    /// The server failed.
    #[error(transparent)]
    Transport(#[from] tonic::transport::Error),
    /// The metrics endpoint could not be started.
    #[error("metrics endpoint: {0}")]
    Metrics(#[from] metrics_exporter_prometheus::BuildError),
}

/// A stats service ready to serve.
#[derive(Debug)]
pub struct StatsServer {
    api: StatsApi,
    grace: std::time::Duration,
}

impl StatsServer {
    /// Connects the counter store; the service tells time by `clock`.
    pub async fn start(args: &Args, clock: Clock) -> Result<Self, StartError> {
        let ttls = MarkerTtls {
            dedupe: args.dedupe_ttl,
            tombstone: args.tombstone_ttl,
            samples: args.day_retention,
        };
        let counters = match &args.redis_url {
            Some(url) => Counters::Redis(
                RedisCounters::connect(url.expose(), &args.redis_prefix, ttls, args.redis_cluster)
                    .await?,
            ),
            None => {
                tracing::warn!(
                    "no REDIS_URL: statistics are kept in this process and lost on restart"
                );
                Counters::Memory(MemoryCounters::new(ttls))
            }
        };
        let retention = Retention {
            hours: args.hour_retention,
            days: args.day_retention,
            max_span: args.max_range,
        };
        let api = StatsApi::new(
            counters,
            retention,
            clock,
            BearerAuth::new("node", args.node_token.expose())?,
            BearerAuth::new("admin", args.admin_token.expose())?,
        );
        Ok(Self {
            api,
            grace: args.serve.shutdown_grace,
        })
    }

    /// Serves until `shutdown` resolves, then drains.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let (health, routes) = serving::base_routes(&[stats_service_server::SERVICE_NAME]);
        health.set_serving::<StatsServiceServer<StatsApi>>().await;
        let routes = routes.add_service(StatsServiceServer::new(self.api));
        Ok(serving::serve(routes, listener, health, shutdown, self.grace).await?)
    }
}

/// Starts the service on `args.listen` and serves until SIGTERM.
pub async fn run(args: Args) -> Result<(), StartError> {
    tracing::info!(?args, "starting stats service");
    metrics::install(args.metrics_listen)?;
    let server = StatsServer::start(&args, Clock::System).await?;
    let listener = TcpListener::bind(args.listen).await?;
    tracing::info!(address = %listener.local_addr()?, "serving gRPC");
    server.serve(listener, shutdown::shutdown_signal()).await?;
    tracing::info!("stats service stopped");
    Ok(())
}
