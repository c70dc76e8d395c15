//! A node's lifecycle: follow the configuration, report readiness once the
//! first snapshot is applied, serve until SIGTERM.

use std::future::Future;
use std::time::Duration;

use eventconnectors_proto::serving;
use tokio::net::TcpListener;
use tonic_health::ServingStatus;

use crate::args::Args;
use crate::config_feed::{ConfigState, WatchSettings, watch_config};

/// Health service name that reports liveness (always SERVING while the
/// process runs); the default service ("") reports readiness.
pub const LIVENESS_SERVICE: &str = "liveness";

/// A data-plane node ready to serve.
#[derive(Debug)]
pub struct DataPlane {
    config: ConfigState,
    watch: WatchSettings,
    grace: Duration,
}

impl DataPlane {
    /// A node configured by `args`; nothing runs until [`DataPlane::serve`].
    pub fn new(args: &Args) -> Self {
        Self {
            config: ConfigState::new(),
            watch: WatchSettings {
                endpoints: args.control_plane.clone(),
                node_id: args.node_id(),
                node_token: args.node_token.clone(),
                backoff_min: args.config_backoff_min,
                backoff_max: args.config_backoff_max,
            },
            grace: args.serve.shutdown_grace,
        }
    }

    /// The node's configuration.
    pub fn config(&self) -> &ConfigState {
        &self.config
    }

    /// Follows the configuration and serves until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), tonic::transport::Error> {
        let (health, routes) = serving::base_routes(&[]);
        health
            .set_service_status("", ServingStatus::NotServing)
            .await;
        health
            .set_service_status(LIVENESS_SERVICE, ServingStatus::Serving)
            .await;

        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let watcher = tokio::spawn(watch_config(self.config.clone(), self.watch.clone(), stop));
        let mut applied = self.config.applied();
        let readiness = health.clone();
        tokio::spawn(async move {
            if applied.wait_for(Option::is_some).await.is_ok() {
                tracing::info!("first configuration applied; ready");
                readiness
                    .set_service_status("", ServingStatus::Serving)
                    .await;
            }
        });
        let shutdown = async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        };
        let result = serving::serve(routes, listener, health, shutdown, self.grace).await;
        let _ = watcher.await;
        result
    }
}

/// Starts a node on `args.listen` and serves until SIGTERM.
pub async fn run(args: Args) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    tracing::info!(?args, "starting data-plane node");
    let node = DataPlane::new(&args);
    let listener = TcpListener::bind(args.listen).await?;
    tracing::info!(address = %listener.local_addr()?, "serving gRPC");
    node.serve(listener, serving::shutdown_signal()).await?;
    tracing::info!("data-plane node stopped");
    Ok(())
}
