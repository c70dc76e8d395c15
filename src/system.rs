//! The three services in one process, built from their own crates exactly
//! as their binaries build them, each on its usual port, with one metrics
//! endpoint. They stop in the order the separate services drain: the node
//! first (it stops taking events, delivers what it holds and flushes its
//! outcomes to a stats service still running), then the control plane
//! (whose statistics eraser still reaches the stats service), then the
//! stats service.

use std::future::Future;
use std::net::SocketAddr;

use clap::Parser;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::args::Args;

/// Why the system could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// An address is taken.
    #[error("cannot listen on {address} ({flag}): {source}; is another instance running?")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// The flag that sets it.
        flag: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// A service's settings are unusable.
    #[error("{0}")]
    Settings(String),
    /// The control plane could not start.
    #[error("control plane: {0}")]
    ControlPlane(#[from] control_plane::StartError),
    /// The stats service could not start.
    #[error("stats service: {0}")]
    Stats(#[from] stats_service::StartError),
    /// The node could not start.
    #[error("data-plane node: {0}")]
    Node(#[from] data_plane::node::StartError),
    /// The metrics endpoint could not start.
    #[error("metrics endpoint: {0}")]
    Metrics(String),
}

/// Binds `address`, naming `flag` when it is taken.
pub async fn listen(address: SocketAddr, flag: &'static str) -> Result<TcpListener, StartError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| StartError::Listen {
            address,
            flag,
            source,
        })
}

/// A service running in its task until its stop signal.
#[derive(Debug)]
struct Running {
    name: &'static str,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), String>>,
}

impl Running {
    fn spawn<F, E>(name: &'static str, serve: impl FnOnce(oneshot::Receiver<()>) -> F) -> Self
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display,
    {
        let (stop, stopped) = oneshot::channel();
        let serving = serve(stopped);
        let task = tokio::spawn(async move { serving.await.map_err(|e| e.to_string()) });
        Self { name, stop, task }
    }

    /// Signals the stop and waits for the drain; `false` if it failed.
    async fn stop(self) -> bool {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(Ok(())) => {
                tracing::info!(service = self.name, "stopped");
                true
            }
            Ok(Err(error)) => {
                tracing::error!(service = self.name, %error, "stopped with an error");
                false
            }
            Err(error) => {
                tracing::error!(service = self.name, %error, "its task failed");
                false
            }
        }
    }
}

/// Resolves when `stopped` fires or its sender is gone.
async fn signalled(stopped: oneshot::Receiver<()>) {
    let _ = stopped.await;
}

/// The URLs of the running services.
#[derive(Debug, Clone)]
pub struct Addresses {
    /// The control plane's gRPC address.
    pub control_plane: SocketAddr,
    /// The node's IngestService address.
    pub ingest: SocketAddr,
    /// The stats service's address.
    pub stats: SocketAddr,
}

/// The three services, serving.
#[derive(Debug)]
pub struct System {
    /// Where they listen.
    pub addresses: Addresses,
    node: Running,
    control_plane: Running,
    stats: Running,
}

/// Parses a service's own flags from `argv`; its other settings come
/// from its environment variables, as for its binary.
fn service_args<T: Parser>(argv: &[String]) -> Result<T, StartError> {
    T::try_parse_from(argv).map_err(|error| StartError::Settings(error.to_string()))
}

impl System {
    /// Starts the stats service, the control plane and the node, in that
    /// order (each may reach the ones before it), with `partner_base_urls`
    /// (`partner=url`) for the node.
    pub async fn start(args: &Args, partner_base_urls: &[String]) -> Result<Self, StartError> {
        let stats_listener = listen(args.stats_listen, "--stats-listen").await?;
        let control_listener = listen(args.control_plane_listen, "--control-plane-listen").await?;
        let ingest_listener = listen(args.ingest_listen, "--ingest-listen").await?;
        let addresses = Addresses {
            control_plane: local(&control_listener)?,
            ingest: local(&ingest_listener)?,
            stats: local(&stats_listener)?,
        };
        let histograms: Vec<(&str, &[f64])> = data_plane::metrics::HISTOGRAMS
            .iter()
            .chain(stats_service::metrics::HISTOGRAMS)
            .copied()
            .collect();
        server_kit::metrics::install(args.metrics_listen, &histograms).map_err(|error| {
            StartError::Metrics(format!(
                "{} (--metrics-listen): {error}",
                args.metrics_listen
            ))
        })?;

        let stats_url = format!("http://{}", addresses.stats);
        let control_url = format!("http://{}", addresses.control_plane);
        let grace = humantime::format_duration(args.serve.shutdown_grace).to_string();
        let common = |binary: &str, listen: SocketAddr| -> Vec<String> {
            [
                binary,
                "--listen",
                &listen.to_string(),
                "--node-token",
                args.node_token.expose(),
                "--shutdown-grace",
                &grace,
            ]
            .map(str::to_owned)
            .to_vec()
        };

        let mut argv = common("stats-service", addresses.stats);
        argv.extend(["--admin-token", args.admin_token.expose()].map(str::to_owned));
        let stats_args: stats_service::args::Args = service_args(&argv)?;
        let stats_server =
            stats_service::StatsServer::start(&stats_args, stats_service::clock::Clock::System)
                .await?;
        let stats = Running::spawn("stats service", |stopped| {
            stats_server.serve(stats_listener, signalled(stopped))
        });

        let mut argv = common("control-plane", addresses.control_plane);
        argv.extend(
            [
                "--admin-token",
                args.admin_token.expose(),
                "--database-url",
                args.database_url.expose(),
                "--stats-url",
                &stats_url,
            ]
            .map(str::to_owned),
        );
        let control_args: control_plane::config::Args = service_args(&argv)?;
        let control_server = control_plane::ControlPlane::start(&control_args).await?;
        let control_plane = Running::spawn("control plane", |stopped| {
            control_server.serve(control_listener, signalled(stopped))
        });

        let mut argv = common("data-plane", addresses.ingest);
        argv.extend(
            [
                "--ingest-token",
                args.ingest_token.expose(),
                "--control-plane",
                &control_url,
                "--stats",
                &stats_url,
            ]
            .map(str::to_owned),
        );
        for base_url in partner_base_urls {
            argv.push(format!("--partner-base-url={base_url}"));
        }
        let node_args: data_plane::args::Args = service_args(&argv)?;
        let node_server = data_plane::node::DataPlane::new(&node_args)?;
        let node = Running::spawn("data-plane node", |stopped| {
            node_server.serve(ingest_listener, signalled(stopped))
        });

        Ok(Self {
            addresses,
            node,
            control_plane,
            stats,
        })
    }

    /// Stops the node, then the control plane, then the stats service,
    /// each after the one before has drained; `false` if one failed.
    pub async fn stop(self) -> bool {
        let node = self.node.stop().await;
        let control_plane = self.control_plane.stop().await;
        let stats = self.stats.stop().await;
        node && control_plane && stats
    }
}

fn local(listener: &TcpListener) -> Result<SocketAddr, StartError> {
    listener
        .local_addr()
        .map_err(|error| StartError::Settings(format!("a listener without an address: {error}")))
}
