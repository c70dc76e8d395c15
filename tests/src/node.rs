//! A data-plane node on a loopback port, following test control planes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use data_plane::args::Args;
use data_plane::config_feed::{ConfigState, Link, Snapshot};
use data_plane::delivery::breaker::State;
use data_plane::node::DataPlane;
use data_plane::outcomes::Outcomes;
use data_plane::routing::Dispatcher;
use eventconnectors_proto::v1::Outcome;
use eventconnectors_proto::v1::ingest_service_client::IngestServiceClient;
use tokio::net::TcpListener;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::control_plane::NODE_TOKEN;

/// The ingest token test nodes accept.
pub const INGEST_TOKEN: &str = "test-ingest-token";

/// An Ingest call of `events` with the test ingest token.
pub fn ingest_request(
    events: Vec<String>,
) -> tonic::Request<eventconnectors_proto::v1::IngestRequest> {
    crate::with_token(
        eventconnectors_proto::v1::IngestRequest {
            events,
            sequence: 0,
        },
        INGEST_TOKEN,
    )
}

/// An IngestService client (requests carry the token through
/// [`crate::with_token`]).
pub type IngestClient = IngestServiceClient<tonic::transport::Channel>;
use crate::server_task::{ServerTask, signalled};

/// A running node; stopped on drop.
#[derive(Debug)]
pub struct NodeHandle {
    /// Where it listens.
    pub addr: SocketAddr,
    config: ConfigState,
    dispatcher: Arc<Dispatcher>,
    outcomes: Outcomes,
    server: ServerTask<tonic::transport::Error>,
}

impl NodeHandle {
    /// Starts node `node_id` following the control planes at `urls`.
    pub async fn start(node_id: &str, urls: &[String]) -> Self {
        Self::start_with(node_id, urls, &[]).await
    }

    /// Starts node `node_id` with `flags` on top of the test defaults
    /// (loopback port, test tokens, fast reconnects, a 2 s grace).
    pub async fn start_with(node_id: &str, urls: &[String], flags: &[&str]) -> Self {
        let mut argv: Vec<String> = [
            "data-plane",
            "--listen",
            "127.0.0.1:0",
            "--node-token",
            NODE_TOKEN,
            "--ingest-token",
            INGEST_TOKEN,
            "--outcomes-token",
            crate::stats::OUTCOMES_TOKEN,
            "--config-backoff-min",
            "50ms",
            "--config-backoff-max",
            "500ms",
            "--shutdown-grace",
            "2s",
            "--node-id",
            node_id,
            "--control-plane",
            &urls.join(","),
        ]
        .iter()
        .map(|arg| (*arg).to_owned())
        .collect();
        // The fake partners listen on loopback: allowed unless the test
        // sets the allow-list itself.
        if !flags
            .iter()
            .any(|f| f.starts_with("--destination-allowlist"))
        {
            argv.extend([
                "--destination-allowlist".to_owned(),
                "127.0.0.0/8".to_owned(),
            ]);
        }
        argv.extend(flags.iter().map(|flag| (*flag).to_owned()));
        let args = Args::try_parse_from(argv).expect("valid node flags");
        let node = DataPlane::new(&args).expect("node starts");
        let config = node.config().clone();
        let dispatcher = Arc::clone(node.dispatcher());
        let outcomes = node.outcomes().clone();
        let listener = TcpListener::bind(args.listen).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = ServerTask::spawn(|stopped| node.serve(listener, signalled(stopped)));
        Self {
            addr,
            config,
            dispatcher,
            outcomes,
            server,
        }
    }

    /// Polls `condition` every few milliseconds until it holds; panics
    /// after `timeout`, naming `what`.
    async fn poll(&self, what: &str, timeout: Duration, condition: impl Fn() -> bool) {
        let started = Instant::now();
        while !condition() {
            assert!(
                started.elapsed() < timeout,
                "node {}: not {what} after {timeout:?}",
                self.addr
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until every accepted event has its outcome (nothing waiting
    /// or in flight): whatever the node will send for them has been sent
    /// and answered.
    pub async fn wait_idle(&self, timeout: Duration) {
        self.poll("idle", timeout, || self.dispatcher.depth() == 0)
            .await;
    }

    /// The breaker of connector `id`'s lane.
    pub fn breaker(&self, id: &str) -> Option<State> {
        let lanes = self.dispatcher.lanes();
        let lane = lanes.iter().find(|lane| lane.id == id)?;
        Some(lane.breaker().state())
    }

    /// Waits until sealed, unacknowledged outcome batches count at least
    /// `delivered` delivered events (flushed, not yet reported).
    pub async fn wait_for_sealed_deliveries(&self, delivered: u64, timeout: Duration) {
        self.poll("holding the sealed outcomes", timeout, || {
            let sealed: u64 = self
                .outcomes
                .pending()
                .unacknowledged()
                .flat_map(|batch| &batch.counts)
                .filter(|count| count.outcome == Outcome::Delivered as i32)
                .map(|count| count.count)
                .sum();
            sealed >= delivered
        })
        .await;
    }

    /// Waits until the node's link to the control plane satisfies
    /// `condition`; panics after `timeout`, naming `what`.
    pub async fn wait_for_link(
        &self,
        what: &str,
        timeout: Duration,
        condition: impl Fn(Link) -> bool,
    ) {
        let mut link = self.config.link();
        tokio::time::timeout(timeout, link.wait_for(|now| condition(*now)))
            .await
            .unwrap_or_else(|_| panic!("node {}: not {what} after {timeout:?}", self.addr))
            .expect("the node's link outlives it");
    }

    /// Waits until the node has (or, `present` false, no longer has) a
    /// delivery lane for connector `id`. Panics after `timeout`.
    pub async fn wait_for_lane(&self, id: &str, present: bool, timeout: Duration) -> Duration {
        let started = Instant::now();
        let what = format!("with lane {id} present={present}");
        self.poll(&what, timeout, || {
            self.dispatcher.lanes().iter().any(|lane| lane.id == id) == present
        })
        .await;
        started.elapsed()
    }

    /// The node's gRPC URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Events waiting or in flight on the node.
    pub fn queued(&self) -> usize {
        self.dispatcher.depth()
    }

    /// Bytes of the events waiting or in flight on the node.
    pub fn queued_bytes(&self) -> usize {
        self.dispatcher.depth_bytes()
    }

    /// An IngestService client.
    pub async fn ingest_client(&self) -> IngestClient {
        let channel = tonic::transport::Endpoint::from_shared(self.url())
            .expect("uri")
            .tcp_nodelay(true)
            .connect()
            .await
            .expect("connect to node");
        IngestServiceClient::new(channel)
            .max_decoding_message_size(64 * 1024 * 1024)
            .max_encoding_message_size(64 * 1024 * 1024)
    }

    /// The node's configuration.
    pub fn config(&self) -> &ConfigState {
        &self.config
    }

    /// Waits until the node's snapshot satisfies `condition`; returns how
    /// long that took. Panics after `timeout`, naming `what`.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        condition: impl Fn(&Snapshot) -> bool,
    ) -> Duration {
        let started = Instant::now();
        let mut applied = self.config.applied();
        loop {
            if self
                .config
                .current()
                .is_some_and(|snapshot| condition(&snapshot))
            {
                return started.elapsed();
            }
            let remaining = timeout.saturating_sub(started.elapsed());
            if remaining.is_zero() {
                panic!(
                    "node {} did not reach `{what}` within {timeout:?}",
                    self.addr
                );
            }
            let _ = tokio::time::timeout(remaining, applied.changed()).await;
        }
    }

    /// The node's health for `service` ("" is readiness).
    pub async fn health(&self, service: &str) -> ServingStatus {
        let channel = tonic::transport::Channel::from_shared(format!("http://{}", self.addr))
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        let mut client = HealthClient::new(channel);
        let reply = client
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .expect("health check")
            .into_inner();
        ServingStatus::try_from(reply.status).expect("known status")
    }

    /// Waits until the node reports ready (its configuration applied and,
    /// in the durable mode, its event log set up); panics after `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) {
        let started = Instant::now();
        while self.health("").await != ServingStatus::Serving {
            assert!(
                started.elapsed() < timeout,
                "node {} not ready after {timeout:?}",
                self.addr
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the node and waits for it.
    pub async fn stop(self) {
        self.server.stop().await.expect("node serves");
    }
}
