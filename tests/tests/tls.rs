//! TLS between every service, with certificates made for each test: the
//! control plane, nodes and the stats service serve TLS; nodes follow the
//! feed over `https://`; with mutual TLS a node is named by its certificate
//! and one without a certificate gets no configuration. On Postgres and
//! SQLite.

use std::path::Path;
use std::time::Duration;

use e2e_tests::control_plane::{
    ADMIN_TOKEN, ControlPlaneHandle, Db, NODE_TOKEN, Options, TestStore,
};
use e2e_tests::node::{INGEST_TOKEN, NodeHandle};
use e2e_tests::pki::TestPki;
use e2e_tests::with_token;
use eventconnectors_proto::v1::config_service_client::ConfigServiceClient;
use eventconnectors_proto::v1::connector_service_client::ConnectorServiceClient;
use eventconnectors_proto::v1::ingest_service_client::IngestServiceClient;
use eventconnectors_proto::v1::watch_config_request::Message;
use eventconnectors_proto::v1::{
    IngestRequest, ListConnectorsRequest, ListNodesRequest, Subscribe, WatchConfigRequest,
};
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

const SECOND: Duration = Duration::from_secs(1);

e2e_tests::each_backend!(
    [postgres => super::Db::Postgres, sqlite => super::Db::Sqlite],
    [
        nodes_follow_the_feed_over_tls_and_serve_ingest_over_tls,
        mutual_tls_names_nodes_by_certificate_and_refuses_nodes_without_one,
    ]
);

/// A TLS channel to `addr` trusting `ca`, presenting `identity` if given.
async fn tls_channel(
    addr: std::net::SocketAddr,
    ca: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(ca).expect("ca")))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(
            std::fs::read(cert).expect("cert"),
            std::fs::read(key).expect("key"),
        ));
    }
    Endpoint::from_shared(format!("https://{addr}"))
        .expect("uri")
        .tls_config(tls)?
        .connect()
        .await
}

async fn tls_control_plane(db: Db, pki: &TestPki, mutual: bool) -> ControlPlaneHandle {
    ControlPlaneHandle::start_with(
        TestStore::new(db).await,
        Options {
            tls: pki.server_flags(mutual.then_some(pki.ca.as_path())),
            ..Options::default()
        },
    )
    .await
}

fn subscribe(node_id: &str) -> impl tokio_stream::Stream<Item = WatchConfigRequest> + use<> {
    tokio_stream::iter(vec![WatchConfigRequest {
        message: Some(Message::Subscribe(Subscribe {
            node_id: node_id.to_owned(),
            last_applied_version: 0,
        })),
    }])
    .chain(tokio_stream::pending())
}

use tokio_stream::StreamExt as _;

async fn nodes_follow_the_feed_over_tls_and_serve_ingest_over_tls(db: Db) {
    let pki = TestPki::new("test CA");
    let control_plane = tls_control_plane(db, &pki, false).await;
    let https = format!("https://127.0.0.1:{}", control_plane.addr.port());
    let ca = pki.ca.to_str().expect("utf-8 path");
    let (cert, key) = (
        pki.server_cert.to_str().expect("utf-8"),
        pki.server_key.to_str().expect("utf-8"),
    );
    let node = NodeHandle::start_with(
        "tls-node",
        &[https],
        &["--upstream-ca", ca, "--tls-cert", cert, "--tls-key", key],
    )
    .await;
    node.wait_for("the first snapshot over TLS", 10 * SECOND, |_| true)
        .await;

    // The control plane speaks TLS only.
    let admin = tls_channel(control_plane.addr, &pki.ca, None)
        .await
        .expect("TLS connect");
    ConnectorServiceClient::new(admin)
        .list_connectors(with_token(ListConnectorsRequest::default(), ADMIN_TOKEN))
        .await
        .expect("admin RPC over TLS");
    ConnectorServiceClient::new(control_plane.channel().await)
        .list_connectors(with_token(ListConnectorsRequest::default(), ADMIN_TOKEN))
        .await
        .expect_err("plaintext to a TLS server");
    // A server certificate from another CA is not trusted.
    let stranger = TestPki::new("another CA");
    assert!(
        tls_channel(control_plane.addr, &stranger.ca, None)
            .await
            .is_err(),
        "a certificate the client does not trust"
    );

    // So does the node's IngestService.
    let channel = tls_channel(node.addr, &pki.ca, None)
        .await
        .expect("TLS to the node");
    let response = IngestServiceClient::new(channel)
        .ingest(with_token(
            IngestRequest {
                events: vec![r#"{"id":"e","workspace_id":"w","type":"t"}"#.into()],
                sequence: 1,
            },
            INGEST_TOKEN,
        ))
        .await
        .expect("ingest over TLS")
        .into_inner();
    assert_eq!(response.accepted, 1);
}

async fn mutual_tls_names_nodes_by_certificate_and_refuses_nodes_without_one(db: Db) {
    let pki = TestPki::new("test CA");
    let control_plane = tls_control_plane(db, &pki, true).await;
    let https = format!("https://127.0.0.1:{}", control_plane.addr.port());
    let ca = pki.ca.to_str().expect("utf-8 path");
    let (cert, key) = pki.client("node-a.nodes.internal");
    let node = NodeHandle::start_with(
        "claims-to-be-someone-else",
        &[https],
        &[
            "--upstream-ca",
            ca,
            "--upstream-client-cert",
            cert.to_str().expect("utf-8"),
            "--upstream-client-key",
            key.to_str().expect("utf-8"),
        ],
    )
    .await;
    node.wait_for("the first snapshot over mutual TLS", 10 * SECOND, |_| true)
        .await;

    // Admins need no certificate: their keys are their credential.
    let admin = tls_channel(control_plane.addr, &pki.ca, None)
        .await
        .expect("TLS connect without a certificate");
    // The registry is written in the background: wait for the node.
    let deadline = std::time::Instant::now() + 5 * SECOND;
    loop {
        let nodes = ConfigServiceClient::new(admin.clone())
            .list_nodes(with_token(ListNodesRequest {}, ADMIN_TOKEN))
            .await
            .expect("list nodes")
            .into_inner()
            .nodes;
        let ids: Vec<_> = nodes.iter().map(|n| n.node_id.as_str()).collect();
        if !ids.is_empty() {
            assert_eq!(ids, ["node-a.nodes.internal"], "named by its certificate");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no node listed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A node without a certificate gets no configuration, token or not.
    let status = ConfigServiceClient::new(admin)
        .watch_config(with_token(subscribe("no-cert"), NODE_TOKEN))
        .await
        .expect_err("no client certificate");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(
        status.message().contains("client certificate"),
        "{status:?}"
    );

    // One signed by another CA cannot even connect.
    let stranger = TestPki::new("another CA");
    let (cert, key) = stranger.client("node-a.nodes.internal");
    let refused = match tls_channel(control_plane.addr, &pki.ca, Some((&cert, &key))).await {
        Err(_) => true,
        Ok(channel) => ConfigServiceClient::new(channel)
            .watch_config(with_token(subscribe("forged"), NODE_TOKEN))
            .await
            .is_err(),
    };
    assert!(refused, "a client certificate from another CA");
}
