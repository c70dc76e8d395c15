//! The whole platform on loopback ports for delivery tests: a control plane
//! (SQLite in a temporary directory, or a fresh Postgres database), a stats
//! service (in-process store) following its directory,
//! and one data-plane node following the first and reporting to the second,
//! with partner base URLs pointing wherever the test says.

use std::time::{Duration, Instant};

use eventconnectors_proto::v1::stats_service_client::StatsServiceClient;
use eventconnectors_proto::v1::{
    ActivateConnectorRequest, Connector, DeactivateConnectorRequest, DeleteConnectorRequest,
    GetConnectorStatsResponse, IngestResponse, OutcomeTotals,
};

use crate::control_plane::{AdminClient, ControlPlaneHandle, Db, Options, TestStore};
use crate::fixtures::create;
use crate::node::{IngestClient, NodeHandle};
use crate::stats::{Backend, RedisPrefix, StatsHandle};

/// A running platform; everything stops on drop.
#[derive(Debug)]
pub struct Platform {
    /// The control plane.
    pub control_plane: ControlPlaneHandle,
    /// The stats service.
    pub stats: StatsHandle,
    node: Option<NodeHandle>,
    admin: AdminClient,
    ingest: IngestClient,
}

impl Platform {
    /// Starts the platform; `node_flags` go to the node after the test
    /// defaults (outcomes flushed every 50 ms, 10 ms retry backoff, 1 ms
    /// linger).
    pub async fn start(node_flags: &[&str]) -> Self {
        Self::start_on(Db::Sqlite, node_flags).await
    }

    /// Starts the platform like [`Platform::start`], its control plane on
    /// `db`.
    pub async fn start_on(db: Db, node_flags: &[&str]) -> Self {
        Self::launch(db, Options::default(), node_flags).await
    }

    /// Starts the platform like [`Platform::start_on`], its control plane
    /// with `options` (their `stats_url` is the platform's own).
    pub async fn launch(db: Db, options: Options, node_flags: &[&str]) -> Self {
        // The control plane and the stats service each call the other: the
        // stats listener is bound first so the control plane knows its URL.
        let stats_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let stats_url = format!("http://{}", stats_listener.local_addr().expect("addr"));
        let control_plane = ControlPlaneHandle::start_with(
            TestStore::new(db).await,
            Options {
                stats_url: Some(stats_url),
                ..options
            },
        )
        .await;
        let stats = StatsHandle::start_on(
            Backend::Memory,
            &RedisPrefix::new(),
            stats_listener,
            stats_service::clock::Clock::System,
            Some(control_plane.url()),
        )
        .await;
        let stats_url = stats.url();
        let mut flags = vec![
            "--stats",
            stats_url.as_str(),
            "--outcome-flush-interval",
            "50ms",
            "--retry-backoff",
            "10ms",
            "--linger",
            "1ms",
        ];
        flags.extend_from_slice(node_flags);
        let node = NodeHandle::start_with("node-0", &[control_plane.url()], &flags).await;
        node.wait_for("the first snapshot", Duration::from_secs(10), |_| true)
            .await;
        let admin = control_plane.admin().await;
        let ingest = node.ingest_client().await;
        Self {
            control_plane,
            stats,
            node: Some(node),
            admin,
            ingest,
        }
    }

    /// Creates `connector` and waits until the node routes to it.
    pub async fn create(&mut self, connector: Connector) -> Connector {
        let created = self
            .admin
            .create_connector(create(connector))
            .await
            .expect("create connector")
            .into_inner();
        self.node()
            .wait_for_lane(&created.id, true, Duration::from_secs(5))
            .await;
        created
    }

    /// Deactivates connector `id` (returns once the control plane has it).
    pub async fn deactivate(&mut self, id: &str) {
        self.admin
            .deactivate_connector(DeactivateConnectorRequest { id: id.to_owned() })
            .await
            .expect("deactivate");
    }

    /// Activates connector `id` and waits until the node routes to it.
    pub async fn activate(&mut self, id: &str) {
        self.admin
            .activate_connector(ActivateConnectorRequest { id: id.to_owned() })
            .await
            .expect("activate");
        self.node()
            .wait_for_lane(id, true, Duration::from_secs(5))
            .await;
    }

    /// Deletes connector `id`.
    pub async fn delete(&mut self, id: &str) {
        self.admin
            .delete_connector(DeleteConnectorRequest { id: id.to_owned() })
            .await
            .expect("delete");
    }

    /// The node.
    pub fn node(&self) -> &NodeHandle {
        self.node.as_ref().expect("the node was stopped")
    }

    /// Stops the node (the SIGTERM path: drain, flush) and waits for it;
    /// the control plane and stats service keep running.
    pub async fn stop_node(&mut self) {
        if let Some(node) = self.node.take() {
            node.stop().await;
        }
    }

    /// Sends `events` in one Ingest call with the ingest token.
    pub async fn ingest(&mut self, events: &[String]) -> Result<IngestResponse, tonic::Status> {
        self.ingest
            .ingest(crate::node::ingest_request(events.to_vec()))
            .await
            .map(tonic::Response::into_inner)
    }

    /// Sends `events` and expects every one accepted.
    pub async fn ingest_all(&mut self, events: &[String]) {
        let response = self.ingest(events).await.expect("ingest");
        assert_eq!(
            (response.accepted as usize, response.rejected),
            (events.len(), Vec::new()),
            "every event accepted"
        );
    }

    /// The connector's statistics over the last 7 days.
    pub async fn stats_of(&self, connector_id: &str) -> GetConnectorStatsResponse {
        StatsServiceClient::new(self.stats.channel().await)
            .get_connector_stats(crate::stats::last_7_days(connector_id))
            .await
            .expect("stats")
            .into_inner()
    }

    /// The connector's recent failures (the first page of 100, newest
    /// first), as the stats service lists them.
    pub async fn recent_failures(
        &self,
        connector_id: &str,
    ) -> Vec<eventconnectors_proto::v1::FailedEvent> {
        StatsServiceClient::new(self.stats.channel().await)
            .list_recent_failures(crate::with_token(
                eventconnectors_proto::v1::ListRecentFailuresRequest {
                    connector_id: connector_id.to_owned(),
                    page_size: 100,
                    page_token: String::new(),
                },
                crate::stats::STATS_ADMIN_TOKEN,
            ))
            .await
            .expect("recent failures")
            .into_inner()
            .failures
    }

    /// Waits until the connector's statistics account for `outcomes`
    /// events in all, and returns them. Panics after `timeout`.
    pub async fn wait_for_outcomes(
        &self,
        connector_id: &str,
        outcomes: u64,
        timeout: Duration,
    ) -> GetConnectorStatsResponse {
        let started = Instant::now();
        loop {
            let stats = self.stats_of(connector_id).await;
            let counted = total(stats.totals.as_ref());
            if counted >= outcomes {
                return stats;
            }
            assert!(
                started.elapsed() < timeout,
                "{connector_id}: {counted} of {outcomes} outcomes after {timeout:?}: {stats:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Every outcome counted in `totals`.
pub fn total(totals: Option<&OutcomeTotals>) -> u64 {
    totals.map_or(0, |t| {
        t.delivered + t.failed + t.transformation_errors + t.dropped
    })
}

/// A raw event of `workspace` and `event_type` with `id`, a user and
/// `properties`.
pub fn event(id: &str, workspace: &str, event_type: &str, properties: serde_json::Value) -> String {
    serde_json::json!({
        "id": id,
        "workspace_id": workspace,
        "type": event_type,
        "timestamp": jiff::Timestamp::now().to_string(),
        "user": {"id": "U-42", "email": " John_Smith@gmail.com ", "phone": "+1 (650) 555-1212", "anonymous_id": "555.777"},
        "context": {"ip": "203.0.113.7", "user_agent": "Mozilla/5.0", "page_url": "https://shop.example/checkout"},
        "properties": properties,
    })
    .to_string()
}
