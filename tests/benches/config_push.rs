//! Configuration push benchmark: propagation latency from the admin RPC
//! returning to every node having applied the change, with many connectors
//! and many watching nodes, and the bytes one change costs on the wire.
//!
//! cargo bench -p e2e-tests --bench config_push -- [connectors] [nodes] [changes]
//! (defaults 10000 50 200; needs the Postgres the test command provides)

#![allow(clippy::print_stdout)] // the report on stdout is what a benchmark is for

use std::time::{Duration, Instant};

use data_plane::config_feed::{ConfigState, WatchSettings, watch_config};
use e2e_tests::bench::{arg, percentile};
use e2e_tests::control_plane::{ControlPlaneHandle, Db, NODE_TOKEN};
use e2e_tests::fixtures::{create, meta_connector};
use e2e_tests::with_token;
use eventconnectors_proto::v1::config_service_client::ConfigServiceClient;
use eventconnectors_proto::v1::watch_config_request::Message as NodeMessage;
use eventconnectors_proto::v1::{
    ActivateConnectorRequest, DeactivateConnectorRequest, Subscribe, WatchConfigRequest,
};
use futures::StreamExt;
use prost::Message;

#[tokio::main]
async fn main() {
    let connectors = arg(1, 10_000);
    let nodes = arg(2, 50);
    let changes = arg(3, 200);
    println!(
        "config push: {connectors} connectors, {nodes} nodes, {changes} changes (Postgres, one replica)"
    );

    let control_plane = ControlPlaneHandle::start(Db::Postgres).await;
    let admin = control_plane.admin().await;

    let started = Instant::now();
    let ids: Vec<String> = futures::stream::iter(0..connectors)
        .map(|index| {
            let mut admin = admin.clone();
            async move {
                admin
                    .create_connector(create(meta_connector(
                        &format!("ws-{}", index % 500),
                        &format!("c{index}"),
                    )))
                    .await
                    .expect("create")
                    .into_inner()
                    .id
            }
        })
        .buffered(16)
        .collect()
        .await;
    println!(
        "created {connectors} connectors in {:.1?}",
        started.elapsed()
    );

    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let states: Vec<ConfigState> = (0..nodes).map(|_| ConfigState::new()).collect();
    for (index, state) in states.iter().enumerate() {
        let settings = WatchSettings {
            endpoints: vec![control_plane.url()],
            node_id: format!("bench-node-{index}"),
            node_token: NODE_TOKEN.into(),
            tls: server_kit::tls::UpstreamTls::default(),
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(1),
        };
        tokio::spawn(watch_config(state.clone(), settings, stop.clone()));
    }
    let started = Instant::now();
    for state in &states {
        let mut applied = state.applied();
        while state.current().is_none_or(|s| s.len() < connectors) {
            applied.changed().await.expect("node running");
        }
    }
    println!(
        "{nodes} nodes loaded the full snapshot in {:.1?}",
        started.elapsed()
    );

    // A raw watcher counting the bytes of each change as it crosses the wire.
    let mut raw = ConfigServiceClient::new(control_plane.channel().await)
        .max_decoding_message_size(usize::MAX);
    let subscribe = WatchConfigRequest {
        message: Some(NodeMessage::Subscribe(Subscribe {
            node_id: "bench-bytes".into(),
            last_applied_version: 0,
        })),
    };
    let request = with_token(
        futures::stream::iter(vec![subscribe]).chain(futures::stream::pending()),
        NODE_TOKEN,
    );
    let mut updates = raw.watch_config(request).await.expect("watch").into_inner();
    let snapshot = updates.message().await.expect("ok").expect("snapshot");
    println!(
        "full snapshot: {} connectors, {} bytes ({} bytes per connector)",
        snapshot.upserts.len(),
        snapshot.encoded_len(),
        snapshot.encoded_len() / snapshot.upserts.len().max(1)
    );

    let mut latencies = Vec::with_capacity(changes);
    let mut change_bytes = Vec::with_capacity(changes);
    for change in 0..changes {
        // Pairs: deactivate a connector, then activate it again.
        let id = &ids[(change / 2 * 7919) % ids.len()];
        let mut admin = admin.clone();
        let deactivate = change % 2 == 0;
        let mut watchers: Vec<_> = states
            .iter()
            .map(|state| (state.clone(), state.applied()))
            .collect();
        if deactivate {
            admin
                .deactivate_connector(DeactivateConnectorRequest { id: id.clone() })
                .await
                .expect("deactivate");
        } else {
            admin
                .activate_connector(ActivateConnectorRequest { id: id.clone() })
                .await
                .expect("activate");
        }
        let returned = Instant::now();
        futures::future::join_all(watchers.iter_mut().map(|(state, applied)| async move {
            while state
                .current()
                .is_none_or(|s| s.connector(id).is_some() == deactivate)
            {
                applied.changed().await.expect("node running");
            }
        }))
        .await;
        latencies.push(returned.elapsed());
        let update = updates.message().await.expect("ok").expect("change");
        change_bytes.push(update.encoded_len());
    }
    latencies.sort_unstable();
    change_bytes.sort_unstable();
    println!(
        "propagation (admin RPC returned -> all {nodes} nodes applied): p50 {:.2?}  p99 {:.2?}  max {:.2?}",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1]
    );
    println!(
        "bytes per change (protobuf ConfigUpdate): min {}  median {}  max {}",
        change_bytes[0],
        change_bytes[change_bytes.len() / 2],
        change_bytes[change_bytes.len() - 1]
    );
    let _ = stop_tx.send(true);
}
