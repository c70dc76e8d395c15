//! The three services in one process, built from their own crates with the
//! flags and start-up their binaries use, each on its usual port, with one
//! metrics endpoint. They stop in the order the separate services drain:
//! the node first (it stops taking events, delivers what it holds and
//! flushes its outcomes to a stats service still running), then the
//! control plane (whose statistics eraser still reaches the stats service),
//! then the stats service.

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

/// What a service's task ended with.
type Ended = Result<(), String>;

/// A service running in its task until its stop signal.
#[derive(Debug)]
struct Running {
    name: &'static str,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Ended>,
    /// What the task ended with, once it has.
    ended: Option<Ended>,
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
        Self {
            name,
            stop: Some(stop),
            task,
            ended: None,
        }
    }

    /// Resolves when the task ends on its own (an error, a panic).
    async fn ended(&mut self) {
        if self.ended.is_none() {
            let ended = (&mut self.task)
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
            self.ended = Some(ended);
        }
    }

    /// Signals the stop and waits for the drain; `false` if it failed.
    async fn stop(mut self) -> bool {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.ended().await;
        match self.ended.unwrap_or(Ok(())) {
            Ok(()) => {
                tracing::info!(service = self.name, "stopped");
                true
            }
            Err(error) => {
                tracing::error!(service = self.name, %error, "stopped with an error");
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
    /// Whether the node sends Meta requests to the demo partner.
    pub meta_to_demo: bool,
    node: Running,
    control_plane: Running,
    stats: Running,
}

/// Parses a service's own flags from `argv`; its other settings come
/// from its environment variables, as for its binary.
fn service_args<T: Parser>(argv: &[String]) -> Result<T, StartError> {
    T::try_parse_from(argv).map_err(|error| StartError::Settings(error.to_string()))
}

/// A service's start failed after `started` were already running: they
/// are stopped (in order) before the error is returned.
async fn unwind<T>(error: impl Into<StartError>, started: Vec<Running>) -> Result<T, StartError> {
    for running in started {
        running.stop().await;
    }
    Err(error.into())
}

impl System {
    /// Starts the stats service, the control plane and the node, in that
    /// order (each may reach the ones before it). With `demo_meta` (the
    /// demo partner's base URL), the node sends Meta requests there, unless
    /// the environment already gives Meta a base URL of its own.
    pub async fn start(args: &Args, demo_meta: Option<String>) -> Result<Self, StartError> {
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
        let argv = |binary: &str, listen: SocketAddr, own: &[&str]| -> Vec<String> {
            let common = [
                binary,
                "--listen",
                &listen.to_string(),
                "--shutdown-grace",
                &grace,
            ];
            common.iter().chain(own).map(|a| (*a).to_owned()).collect()
        };
        let admin = args.admin_token.expose();
        let node = args.node_token.expose();
        // Credentials that never leave this process: fresh on every start.
        let outcomes = server_kit::auth::random_token();
        let directory = server_kit::auth::random_token();
        let stats_args: stats_service::args::Args = service_args(&argv(
            "stats-service",
            addresses.stats,
            &[
                "--admin-token",
                admin,
                "--outcomes-token",
                &outcomes,
                "--control-plane",
                &control_url,
                "--directory-token",
                &directory,
            ],
        ))?;
        let mut control_args: control_plane::config::Args = service_args(&argv(
            "control-plane",
            addresses.control_plane,
            &[
                "--admin-token",
                admin,
                "--node-token",
                node,
                "--directory-token",
                &directory,
                "--database-url",
                args.database_url.expose(),
                "--stats-url",
                &stats_url,
                "--stats-admin-token",
                admin,
            ],
        ))?;
        let mut node_args: data_plane::args::Args = service_args(&argv(
            "data-plane",
            addresses.ingest,
            &[
                "--node-token",
                node,
                "--ingest-token",
                args.ingest_token.expose(),
                "--control-plane",
                &control_url,
                "--stats",
                &stats_url,
                "--outcomes-token",
                &outcomes,
            ],
        ))?;
        // The demo partner listens on loopback, which customers' URLs may
        // not reach: open that one service (its literal address) to the
        // node and the control plane, and nothing else.
        if let Some(service) = demo_meta
            .as_deref()
            .and_then(|url| url.strip_prefix("http://"))
            .map(|rest| rest.trim_end_matches('/'))
        {
            for allowlist in [
                &mut control_args.destination_allowlist,
                &mut node_args.destination_allowlist,
            ] {
                *allowlist = [allowlist.as_str(), service]
                    .iter()
                    .filter(|part| !part.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(",");
            }
        }
        let meta_to_demo = match demo_meta {
            Some(url) => route_meta_to_demo(&mut node_args, url)?,
            None => false,
        };
        // Connector tests and previews go where the node sends.
        control_args.partner_base_urls = node_args.partners.overrides.clone();

        let stats_server =
            stats_service::StatsServer::start(&stats_args, stats_service::clock::Clock::System)
                .await?;
        let stats = Running::spawn("stats service", |stopped| {
            stats_server.serve(stats_listener, signalled(stopped))
        });
        let control_server = match control_plane::ControlPlane::start(&control_args).await {
            Ok(server) => server,
            Err(error) => return unwind(error, vec![stats]).await,
        };
        let control_plane = Running::spawn("control plane", |stopped| {
            control_server.serve(control_listener, signalled(stopped))
        });
        let node_server = match data_plane::node::DataPlane::new(&node_args) {
            Ok(server) => server,
            Err(error) => return unwind(error, vec![control_plane, stats]).await,
        };
        let node = Running::spawn("data-plane node", |stopped| {
            node_server.serve(ingest_listener, signalled(stopped))
        });
        Ok(Self {
            addresses,
            meta_to_demo,
            node,
            control_plane,
            stats,
        })
    }

    /// Resolves with a service's name when one ends on its own.
    pub async fn failed(&mut self) -> &'static str {
        tokio::select! {
            () = self.node.ended() => self.node.name,
            () = self.control_plane.ended() => self.control_plane.name,
            () = self.stats.ended() => self.stats.name,
        }
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

/// Sends the node's Meta requests to the demo partner at `url`, unless its
/// environment gives Meta a base URL already (that one is kept, and the
/// demo goes without its Meta connector). Whether it did.
fn route_meta_to_demo(node: &mut data_plane::args::Args, url: String) -> Result<bool, StartError> {
    let settings =
        |error: partners::base_urls::BaseUrlError| StartError::Settings(error.to_string());
    let configured = node.partners.base_urls().map_err(settings)?;
    let default = partners::partner("meta_capi").and_then(|p| p.default_base_url);
    if Some(configured.get("meta_capi")) != default {
        tracing::warn!(
            "Meta has a base URL of its own in the environment: the demo runs without its Meta connector"
        );
        return Ok(false);
    }
    node.partners.overrides.push(("meta_capi".to_owned(), url));
    node.partners.base_urls().map_err(settings)?;
    Ok(true)
}

fn local(listener: &TcpListener) -> Result<SocketAddr, StartError> {
    listener
        .local_addr()
        .map_err(|error| StartError::Settings(format!("a listener without an address: {error}")))
}
