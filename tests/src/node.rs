//! A data-plane node on a loopback port, following test control planes.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use data_plane::args::Args;
use data_plane::config_feed::{ConfigState, Snapshot};
use data_plane::node::DataPlane;
use tokio::net::TcpListener;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::control_plane::NODE_TOKEN;
use crate::server_task::{ServerTask, signalled};

/// A running node; stopped on drop.
#[derive(Debug)]
pub struct NodeHandle {
    /// Where it listens.
    pub addr: SocketAddr,
    config: ConfigState,
    server: ServerTask<tonic::transport::Error>,
}

impl NodeHandle {
    /// Starts node `node_id` following the control planes at `urls`.
    pub async fn start(node_id: &str, urls: &[String]) -> Self {
        let args = Args {
            listen: "127.0.0.1:0".parse().expect("addr"),
            control_plane: urls.to_vec(),
            node_id: Some(node_id.to_owned()),
            node_token: NODE_TOKEN.into(),
            config_backoff_min: Duration::from_millis(50),
            config_backoff_max: Duration::from_millis(500),
            serve: eventconnectors_proto::serving::ServeFlags {
                shutdown_grace: Duration::from_secs(2),
                log_json: false,
            },
        };
        let node = DataPlane::new(&args);
        let config = node.config().clone();
        let listener = TcpListener::bind(args.listen).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = ServerTask::spawn(|stopped| node.serve(listener, signalled(stopped)));
        Self {
            addr,
            config,
            server,
        }
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

    /// Stops the node and waits for it.
    pub async fn stop(self) {
        self.server.stop().await.expect("node serves");
    }
}
