//! The stats service: delivery outcomes from data-plane nodes into
//! time-bucketed counters (Redis, or in process), and per-connector
//! statistics over presets and custom ranges.

pub mod api;
pub mod args;
pub mod batch;
pub mod clock;
pub mod counters;
pub mod directory;
pub mod failures;
pub mod fields;
pub mod intake;
pub mod metrics;
pub mod named_lists;
pub mod query;
pub mod ranges;

use std::future::Future;

use eventconnectors_proto::v1::stats_service_server::{self, StatsServiceServer};
use server_kit::access::{Bootstrap, Scope};
use server_kit::auth::{BearerAuth, EmptyToken};
use server_kit::{serving, shutdown};
use tokio::net::TcpListener;

use crate::api::{StatsAccess, StatsApi};
use crate::args::Args;
use crate::clock::Clock;
use crate::counters::{
    CounterError, Counters, MarkerTtls, MemoryCounters, RedisCounters, RedisTarget,
};
use crate::directory::{Directory, FollowSettings};
use crate::ranges::Retention;

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A token is unusable.
    #[error(transparent)]
    Token(#[from] EmptyToken),
    /// CONTROL_PLANE_URLS without DIRECTORY_TOKEN.
    #[error(
        "CONTROL_PLANE_URLS is set but DIRECTORY_TOKEN is not: set it to the control plane's DIRECTORY_TOKEN"
    )]
    MissingDirectoryToken,
    /// A TLS file is unusable.
    #[error(transparent)]
    Tls(#[from] server_kit::tls::TlsFileError),
    /// REDIS_CA cannot be read.
    #[error("cannot read REDIS_CA {path}: {source}")]
    RedisCa {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
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

/// Where the counters live: the server at `url`, or with `cluster` the
/// Redis Cluster whose nodes `url` lists. With `ca`, a `rediss://` server
/// must present a certificate that CA signed.
fn redis_target(
    url: &str,
    cluster: bool,
    ca: Option<&std::path::Path>,
) -> Result<RedisTarget, StartError> {
    let tls = match ca {
        None => None,
        Some(ca) => Some(redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(std::fs::read(ca).map_err(|source| StartError::RedisCa {
                path: ca.to_owned(),
                source,
            })?),
        }),
    };
    Ok(RedisTarget::new(url, cluster, tls)?)
}

/// A stats service ready to serve.
#[derive(Debug)]
pub struct StatsServer {
    api: StatsApi,
    directory: Directory,
    follow: Option<FollowSettings>,
    tls: server_kit::tls::ServerTls,
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
                RedisCounters::connect_to(
                    &redis_target(url.expose(), args.redis_cluster, args.redis_ca.as_deref())?,
                    &args.redis_prefix,
                    ttls,
                )
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
        let follow = match (args.control_plane.is_empty(), &args.directory_token) {
            (true, _) => {
                tracing::warn!(
                    "no CONTROL_PLANE_URLS: only ADMIN_TOKEN can read statistics (API keys are unknown here)"
                );
                None
            }
            (false, None) => return Err(StartError::MissingDirectoryToken),
            (false, Some(token)) => Some(FollowSettings {
                endpoints: args.control_plane.clone(),
                token: token.clone(),
                name: format!(
                    "stats-service/{}",
                    std::env::var("HOSTNAME").unwrap_or_else(|_| "local".to_owned())
                ),
                tls: server_kit::tls::UpstreamTls::from_flags(&args.upstream)?,
            }),
        };
        let directory = Directory::default();
        let tls = server_kit::tls::ServerTls::from_flags(&args.tls)?;
        let access = StatsAccess {
            outcomes: BearerAuth::new("outcomes", args.outcomes_token.expose())?,
            bootstrap: Bootstrap::default().with(args.admin_token.expose(), Scope::Operator)?,
            directory: directory.clone(),
            tls: tls.clone(),
        };
        let api = StatsApi::new(counters, retention, clock, access);
        Ok(Self {
            api,
            directory,
            follow,
            tls,
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
        let api = self.api.clone();
        let gate = move |request: tonic::Request<()>| {
            api.gate(request.metadata())?;
            Ok(request)
        };
        let routes = routes.add_service(tonic::service::interceptor::InterceptedService::new(
            StatsServiceServer::new(self.api)
                .max_decoding_message_size(eventconnectors_proto::limits::MAX_OUTCOME_BATCH_BYTES),
            gate,
        ));
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let follower = self
            .follow
            .map(|settings| tokio::spawn(directory::follow(self.directory, settings, stop)));
        let shutdown = async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        };
        let limits = serving::ServerLimits::default();
        let result = serving::serve(
            routes, listener, &self.tls, &limits, health, shutdown, self.grace,
        )
        .await;
        if let Some(follower) = follower {
            let _ = follower.await;
        }
        Ok(result?)
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
