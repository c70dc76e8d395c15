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

/// A stats service from command-line `flags` (plus test tokens), serving
/// on a loopback port; `Err` when it cannot start.
async fn stats_from_flags(
    flags: &[&str],
) -> Result<
    (
        std::net::SocketAddr,
        e2e_tests::server_task::ServerTask<stats_service::StartError>,
    ),
    stats_service::StartError,
> {
    use clap::Parser;
    let mut argv = vec![
        "stats-service",
        "--admin-token",
        e2e_tests::stats::STATS_ADMIN_TOKEN,
        "--outcomes-token",
        e2e_tests::stats::OUTCOMES_TOKEN,
        "--metrics-listen",
        "127.0.0.1:0",
    ];
    argv.extend_from_slice(flags);
    let args = stats_service::args::Args::try_parse_from(argv).expect("valid flags");
    let server =
        stats_service::StatsServer::start(&args, stats_service::clock::Clock::System).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = e2e_tests::server_task::ServerTask::spawn(|stopped| {
        server.serve(listener, e2e_tests::server_task::signalled(stopped))
    });
    Ok((addr, task))
}

fn one_batch(
    id: &str,
) -> impl tokio_stream::Stream<Item = eventconnectors_proto::v1::OutcomeBatch> + use<> {
    let now = jiff::Timestamp::now().as_second();
    let batch = eventconnectors_proto::v1::OutcomeBatch {
        batch_id: id.to_owned(),
        node_id: "tls-test".to_owned(),
        counts: vec![eventconnectors_proto::v1::OutcomeCount {
            connector_id: "c-tls".to_owned(),
            bucket_start: Some(prost_types::Timestamp {
                seconds: now - now.rem_euclid(3600),
                nanos: 0,
            }),
            outcome: eventconnectors_proto::v1::Outcome::Delivered as i32,
            count: 3,
            ..Default::default()
        }],
        failures: Vec::new(),
    };
    tokio_stream::iter(vec![batch]).chain(tokio_stream::pending())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stats_service_requires_node_certificates_with_mutual_tls() {
    let pki = TestPki::new("test CA");
    let (cert, key, ca) = (
        pki.server_cert.to_str().expect("utf-8"),
        pki.server_key.to_str().expect("utf-8"),
        pki.ca.to_str().expect("utf-8"),
    );
    let (addr, _server) =
        stats_from_flags(&["--tls-cert", cert, "--tls-key", key, "--tls-client-ca", ca])
            .await
            .expect("starts");
    let report = |channel: Channel, id: &'static str| async move {
        let mut acks =
            eventconnectors_proto::v1::stats_service_client::StatsServiceClient::new(channel)
                .report_outcomes(with_token(one_batch(id), e2e_tests::stats::OUTCOMES_TOKEN))
                .await?
                .into_inner();
        acks.message().await
    };
    let without = tls_channel(addr, &pki.ca, None)
        .await
        .expect("TLS without a certificate");
    let status = report(without, "b1")
        .await
        .expect_err("no client certificate");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    let (node_cert, node_key) = pki.client("node-a.nodes.internal");
    let with = tls_channel(addr, &pki.ca, Some((&node_cert, &node_key)))
        .await
        .expect("mutual TLS");
    let ack = report(with, "b2").await.expect("accepted").expect("acked");
    assert_eq!(ack.batch_id, "b2");
}

/// A Redis server speaking TLS only, on a free port; killed on drop.
struct TlsRedis {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tls_redis(pki: &TestPki) -> TlsRedis {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = |p: &Path| p.to_str().expect("utf-8").to_owned();
    let child = std::process::Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(["--tls-port", &port.to_string()])
        .args(["--tls-cert-file", &path(&pki.server_cert)])
        .args(["--tls-key-file", &path(&pki.server_key)])
        .args(["--tls-ca-cert-file", &path(&pki.ca)])
        .args(["--tls-auth-clients", "no"])
        .args(["--dir", &path(dir.path())])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server is installed (the test command requires it)");
    let deadline = std::time::Instant::now() + 5 * SECOND;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "TLS Redis did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    TlsRedis {
        child,
        port,
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_go_to_redis_over_tls_with_its_certificate_checked() {
    let pki = TestPki::new("test CA");
    let redis = tls_redis(&pki);
    let url = format!("rediss://127.0.0.1:{}", redis.port);
    let ca = pki.ca.to_str().expect("utf-8");

    // A server certificate from a CA the service was not given: refused.
    let stranger = TestPki::new("another CA");
    let refused = stats_from_flags(&[
        "--redis-url",
        &url,
        "--redis-ca",
        stranger.ca.to_str().expect("utf-8"),
    ])
    .await;
    let error = refused.expect_err("an untrusted Redis certificate");
    assert!(error.to_string().contains("certificate"), "{error}");

    let (addr, _server) = stats_from_flags(&["--redis-url", &url, "--redis-ca", ca])
        .await
        .expect("starts over TLS");
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut client =
        eventconnectors_proto::v1::stats_service_client::StatsServiceClient::new(channel);
    let mut acks = client
        .report_outcomes(with_token(
            one_batch("tls-1"),
            e2e_tests::stats::OUTCOMES_TOKEN,
        ))
        .await
        .expect("stream")
        .into_inner();
    acks.message().await.expect("ack").expect("open");
    let stats = client
        .get_connector_stats(with_token(
            eventconnectors_proto::v1::GetConnectorStatsRequest {
                connector_id: "c-tls".into(),
                preset: eventconnectors_proto::v1::StatsPreset::Last7Days as i32,
                ..Default::default()
            },
            e2e_tests::stats::STATS_ADMIN_TOKEN,
        ))
        .await
        .expect("stats")
        .into_inner();
    assert_eq!(
        stats.totals.expect("totals").delivered,
        3,
        "counted in the TLS Redis"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sslmode_require_is_honoured() {
    use sqlx::Connection;
    let store = TestStore::new(Db::Postgres).await;
    let mut admin = sqlx::PgConnection::connect(&store.url)
        .await
        .expect("connect");
    let ssl: String = sqlx::query_scalar("SHOW ssl")
        .fetch_one(&mut admin)
        .await
        .expect("show ssl");
    let required = format!("{}?sslmode=require", store.url);
    let opened = control_plane::store::Store::connect(&required, 2).await;
    if ssl != "on" {
        // A server without TLS: `require` must refuse rather than fall
        // back to plaintext.
        assert!(
            opened.is_err(),
            "sslmode=require against a server without TLS"
        );
        return;
    }
    let opened = opened.expect("a TLS connection");
    opened
        .list_keys(None, true)
        .await
        .expect("a query over TLS");
    let database = store
        .url
        .rsplit('/')
        .next()
        .expect("database name")
        .to_owned();
    let (tls, all): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE s.ssl), count(*) FROM pg_stat_ssl s \
         JOIN pg_stat_activity a USING (pid) WHERE a.datname = $1 AND a.pid <> pg_backend_pid()",
    )
    .bind(&database)
    .fetch_one(&mut admin)
    .await
    .expect("connections");
    assert!(all > 0, "the store holds connections");
    assert_eq!(tls, all, "every connection of the store is TLS");
    opened.close().await;
}
