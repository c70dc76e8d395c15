//! Configuration push: real control-plane replicas and real data-plane nodes
//! on loopback ports, over real Postgres (and SQLite where one replica is
//! all the store allows).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use e2e_tests::control_plane::{
    ADMIN_TOKEN, ControlPlaneHandle, Db, NODE_TOKEN, Options, TestStore,
};
use e2e_tests::fixtures::{create, mask, meta_connector, webhook_connector};
use e2e_tests::node::NodeHandle;
use e2e_tests::with_token;
use eventconnectors_proto::v1::config_service_client::ConfigServiceClient;
use eventconnectors_proto::v1::watch_config_request::Message;
use eventconnectors_proto::v1::{
    ActivateConnectorRequest, ConfigUpdate, Connector, DeactivateConnectorRequest,
    DeleteConnectorRequest, ListNodesRequest, Subscribe, UpdateConnectorRequest,
    WatchConfigRequest,
};
use sqlx::Connection;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request, Streaming};
use tonic_health::pb::health_check_response::ServingStatus;

/// What "at once" means for propagation.
const WITHIN: Duration = Duration::from_secs(1);

e2e_tests::each_backend!(
    [postgres => super::Db::Postgres, sqlite => super::Db::Sqlite],
    [
    lifecycle_changes_reach_three_nodes_within_a_second,
        a_node_reconnecting_gets_exactly_the_missed_changes_or_a_full_snapshot,
        list_nodes_shows_versions_and_what_nodes_could_not_apply,
        the_feed_requires_the_node_token_and_list_nodes_the_admin_token,
    ]
);

async fn start_nodes(count: usize, urls: &[String]) -> Vec<NodeHandle> {
    let mut nodes = Vec::new();
    for index in 0..count {
        nodes.push(NodeHandle::start(&format!("node-{index}"), urls).await);
    }
    for node in &nodes {
        node.wait_for("first snapshot", Duration::from_secs(10), |_| true)
            .await;
    }
    nodes
}

/// Waits until every node satisfies `condition`; returns the slowest time.
async fn all_nodes(
    nodes: &[NodeHandle],
    what: &str,
    condition: impl Fn(&data_plane::config_feed::Snapshot) -> bool,
) -> Duration {
    let started = Instant::now();
    for node in nodes {
        node.wait_for(what, Duration::from_secs(5), &condition)
            .await;
    }
    started.elapsed()
}

async fn lifecycle_changes_reach_three_nodes_within_a_second(db: Db) {
    let control_plane = ControlPlaneHandle::start(db).await;
    let nodes = start_nodes(3, &[control_plane.url()]).await;
    let mut admin = control_plane.admin().await;

    let created = admin
        .create_connector(create(meta_connector("ws-1", "Meta")))
        .await
        .expect("create")
        .into_inner();
    let id = created.id.clone();
    let took = all_nodes(&nodes, "connector created", |s| s.connector(&id).is_some()).await;
    assert!(took < WITHIN, "create took {took:?}");
    let delivered = nodes[0].config().current().expect("snapshot");
    let config = delivered.connector(&id).expect("present");
    assert_eq!(
        config.secrets["access_token"],
        e2e_tests::fixtures::META_TOKEN,
        "nodes get the credentials"
    );
    assert_eq!(delivered.workspace("ws-1").len(), 1);

    admin
        .deactivate_connector(DeactivateConnectorRequest { id: id.clone() })
        .await
        .expect("deactivate");
    let took = all_nodes(&nodes, "connector deactivated", |s| {
        s.connector(&id).is_none()
    })
    .await;
    assert!(took < WITHIN, "deactivate took {took:?}");

    admin
        .activate_connector(ActivateConnectorRequest { id: id.clone() })
        .await
        .expect("activate");
    let took = all_nodes(&nodes, "connector activated", |s| {
        s.connector(&id).is_some()
    })
    .await;
    assert!(took < WITHIN, "activate took {took:?}");

    let current = admin
        .get_connector(eventconnectors_proto::v1::GetConnectorRequest { id: id.clone() })
        .await
        .expect("get")
        .into_inner();
    let updated = admin
        .update_connector(UpdateConnectorRequest {
            connector: Some(Connector {
                mappings: vec![],
                ..current
            }),
            update_mask: mask(&["mappings"]),
        })
        .await
        .expect("update")
        .into_inner();
    let took = all_nodes(&nodes, "connector updated", |s| {
        s.connector(&id)
            .is_some_and(|c| c.connector_version == updated.version && c.mappings.is_empty())
    })
    .await;
    assert!(took < WITHIN, "update took {took:?}");

    admin
        .delete_connector(DeleteConnectorRequest { id: id.clone() })
        .await
        .expect("delete");
    let took = all_nodes(&nodes, "connector deleted", |s| s.connector(&id).is_none()).await;
    assert!(took < WITHIN, "delete took {took:?}");

    for node in &nodes {
        assert_eq!(node.health("").await, ServingStatus::Serving);
    }
    for node in nodes {
        node.stop().await;
    }
    control_plane
        .stop()
        .await
        .expect("graceful stop with nodes connected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_one_replica_reaches_nodes_on_another() {
    let store = TestStore::new(Db::Postgres).await;
    // A poll far slower than the bound: only NOTIFY can make it in time.
    let slow_poll = Options {
        poll_interval: Duration::from_secs(30),
        ..Options::default()
    };
    let replica_a = ControlPlaneHandle::start_with(store.clone(), slow_poll.clone()).await;
    let replica_b = ControlPlaneHandle::start_with(store.clone(), slow_poll).await;
    let nodes = start_nodes(3, &[replica_b.url()]).await;
    let mut admin_a = replica_a.admin().await;

    for round in 0..3 {
        let created = admin_a
            .create_connector(create(meta_connector("ws-1", &format!("round {round}"))))
            .await
            .expect("create through A")
            .into_inner();
        let took = all_nodes(&nodes, "created through A", |s| {
            s.connector(&created.id).is_some()
        })
        .await;
        assert!(took < WITHIN, "round {round}: {took:?}");
        admin_a
            .deactivate_connector(DeactivateConnectorRequest {
                id: created.id.clone(),
            })
            .await
            .expect("deactivate through A");
        let took = all_nodes(&nodes, "deactivated through A", |s| {
            s.connector(&created.id).is_none()
        })
        .await;
        assert!(took < WITHIN, "round {round}: {took:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_notify_the_poll_alone_delivers_the_change() {
    let store = TestStore::new(Db::Postgres).await;
    let replica_a = ControlPlaneHandle::start_with(store.clone(), Options::default()).await;
    let deaf = Options {
        listen_notify: false,
        poll_interval: Duration::from_millis(200),
        ..Options::default()
    };
    let replica_b = ControlPlaneHandle::start_with(store.clone(), deaf).await;
    let node = NodeHandle::start("node-0", &[replica_b.url()]).await;
    node.wait_for("first snapshot", Duration::from_secs(10), |_| true)
        .await;

    let created = replica_a
        .admin()
        .await
        .create_connector(create(meta_connector("ws-1", "Meta")))
        .await
        .expect("create through A")
        .into_inner();
    let took = node
        .wait_for(
            "created through A, seen by polling",
            Duration::from_secs(5),
            |s| s.connector(&created.id).is_some(),
        )
        .await;
    assert!(took < WITHIN, "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notify_lost_while_the_listener_reconnects_is_healed() {
    let store = TestStore::new(Db::Postgres).await;
    let replica_a = ControlPlaneHandle::start_with(store.clone(), Options::default()).await;
    // The poll alone would take a minute: healing must come from the listener.
    let replica_b = ControlPlaneHandle::start_with(
        store.clone(),
        Options {
            poll_interval: Duration::from_secs(60),
            ..Options::default()
        },
    )
    .await;
    let node = NodeHandle::start("node-0", &[replica_b.url()]).await;
    node.wait_for("first snapshot", Duration::from_secs(10), |_| true)
        .await;

    // Cut B's LISTEN connection, then change through A while B is deaf.
    let mut postgres = sqlx::PgConnection::connect(&store.url)
        .await
        .expect("connect");
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut postgres)
    .await
    .expect("terminate listeners");
    assert_eq!(killed.len(), 2, "one listener per replica");
    postgres.close().await.expect("close");

    let created = replica_a
        .admin()
        .await
        .create_connector(create(meta_connector("ws-1", "Meta")))
        .await
        .expect("create through A")
        .into_inner();
    let took = node
        .wait_for(
            "created while B's listener was down",
            Duration::from_secs(5),
            |s| s.connector(&created.id).is_some(),
        )
        .await;
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_keep_their_configuration_while_the_control_plane_is_down() {
    let store = TestStore::new(Db::Postgres).await;
    let control_plane = ControlPlaneHandle::start_with(store.clone(), Options::default()).await;
    let addr = control_plane.addr;
    let nodes = start_nodes(3, &[control_plane.url()]).await;
    let first = control_plane
        .admin()
        .await
        .create_connector(create(meta_connector("ws-1", "Meta")))
        .await
        .expect("create")
        .into_inner();
    all_nodes(&nodes, "first connector", |s| {
        s.connector(&first.id).is_some()
    })
    .await;

    control_plane.stop().await.expect("stop");
    for node in &nodes {
        node.wait_for_link("disconnected", Duration::from_secs(5), |link| {
            !link.connected && link.sessions_ended >= 1
        })
        .await;
    }
    for node in &nodes {
        let snapshot = node.config().current().expect("kept");
        assert!(
            snapshot.connector(&first.id).is_some(),
            "the last good configuration is kept"
        );
        assert_eq!(
            node.health("").await,
            ServingStatus::Serving,
            "still ready with the last good configuration"
        );
    }

    // Back on the same address: nodes reconnect on their own and catch up.
    let restarted = ControlPlaneHandle::start_with(
        store,
        Options {
            addr,
            ..Options::default()
        },
    )
    .await;
    let second = restarted
        .admin()
        .await
        .create_connector(create(webhook_connector(
            "ws-1",
            "Hook",
            "https://example.com/h",
        )))
        .await
        .expect("create after restart")
        .into_inner();
    all_nodes(&nodes, "connector created after the restart", |s| {
        s.connector(&first.id).is_some() && s.connector(&second.id).is_some()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_started_before_the_control_plane_is_not_ready_until_its_first_snapshot() {
    let store = TestStore::new(Db::Sqlite).await;
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").expect("reserve");
    let addr = reserved.local_addr().expect("addr");
    drop(reserved);
    let node = NodeHandle::start("early-node", &[format!("http://{addr}")]).await;
    node.wait_for_link(
        "having tried the control plane twice",
        Duration::from_secs(5),
        |link| link.sessions_ended >= 2,
    )
    .await;
    assert!(node.config().current().is_none());
    assert_eq!(
        node.health("").await,
        ServingStatus::NotServing,
        "not ready without configuration"
    );
    assert_eq!(
        node.health("liveness").await,
        ServingStatus::Serving,
        "but alive"
    );

    let _control_plane = ControlPlaneHandle::start_with(
        store,
        Options {
            addr,
            ..Options::default()
        },
    )
    .await;
    node.wait_for("first snapshot", Duration::from_secs(5), |_| true)
        .await;
    let deadline = Instant::now() + Duration::from_secs(2);
    while node.health("").await != ServingStatus::Serving {
        assert!(
            Instant::now() < deadline,
            "readiness follows the first snapshot"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A raw WatchConfig stream, as a node would open it.
struct RawWatch {
    replies: mpsc::Sender<WatchConfigRequest>,
    updates: Streaming<ConfigUpdate>,
}

impl RawWatch {
    async fn open(
        control_plane: &ControlPlaneHandle,
        node_id: &str,
        last_applied_version: u64,
    ) -> Self {
        let mut client = ConfigServiceClient::new(control_plane.channel().await);
        let (replies, outbound) = mpsc::channel(8);
        replies
            .send(WatchConfigRequest {
                message: Some(Message::Subscribe(Subscribe {
                    node_id: node_id.to_owned(),
                    last_applied_version,
                })),
            })
            .await
            .expect("queue subscribe");
        let request = with_token(ReceiverStream::new(outbound), NODE_TOKEN);
        let updates = client
            .watch_config(request)
            .await
            .expect("watch")
            .into_inner();
        Self { replies, updates }
    }

    async fn next(&mut self) -> ConfigUpdate {
        tokio::time::timeout(Duration::from_secs(5), self.updates.message())
            .await
            .expect("an update within 5 s")
            .expect("stream ok")
            .expect("stream open")
    }

    async fn nothing_within(&mut self, wait: Duration) {
        if let Ok(update) = tokio::time::timeout(wait, self.updates.message()).await {
            panic!("expected no update, got {update:?}");
        }
    }
}

fn ids(update: &ConfigUpdate) -> (BTreeSet<String>, BTreeSet<String>) {
    (
        update.upserts.iter().map(|c| c.id.clone()).collect(),
        update.removed_connector_ids.iter().cloned().collect(),
    )
}

async fn a_node_reconnecting_gets_exactly_the_missed_changes_or_a_full_snapshot(db: Db) {
    let control_plane = ControlPlaneHandle::start(db).await;
    let mut admin = control_plane.admin().await;
    let mut created = Vec::new();
    for index in 0..3 {
        created.push(
            admin
                .create_connector(create(meta_connector("ws-1", &format!("c{index}"))))
                .await
                .expect("create")
                .into_inner(),
        );
    }

    let mut first = RawWatch::open(&control_plane, "raw", 0).await;
    let snapshot = first.next().await;
    assert!(snapshot.full_snapshot, "version 0 gets the whole world");
    assert_eq!(snapshot.upserts.len(), 3);
    let seen = snapshot.version;
    drop(first);

    // While the node is away: one new, one deactivated, one updated, one created-then-deleted.
    let added = admin
        .create_connector(create(meta_connector("ws-2", "c3")))
        .await
        .expect("create")
        .into_inner();
    admin
        .deactivate_connector(DeactivateConnectorRequest {
            id: created[0].id.clone(),
        })
        .await
        .expect("deactivate");
    admin
        .update_connector(UpdateConnectorRequest {
            connector: Some(Connector {
                name: "renamed".into(),
                ..created[1].clone()
            }),
            update_mask: mask(&["name"]),
        })
        .await
        .expect("update");
    let transient = admin
        .create_connector(create(meta_connector("ws-2", "transient")))
        .await
        .expect("create")
        .into_inner();
    admin
        .delete_connector(DeleteConnectorRequest {
            id: transient.id.clone(),
        })
        .await
        .expect("delete");

    let mut back = RawWatch::open(&control_plane, "raw", seen).await;
    let missed = back.next().await;
    assert!(
        !missed.full_snapshot,
        "a known version gets only the changes"
    );
    assert_eq!(missed.version, seen + 5);
    let (upserts, removed) = ids(&missed);
    assert_eq!(
        upserts,
        BTreeSet::from([added.id.clone(), created[1].id.clone()])
    );
    assert_eq!(
        removed,
        BTreeSet::from([created[0].id.clone(), transient.id.clone()])
    );
    assert!(
        !upserts.contains(&created[2].id),
        "unchanged connectors are not resent"
    );

    // Up to date: nothing until the next change, which comes as a change.
    let mut current = RawWatch::open(&control_plane, "raw", missed.version).await;
    current.nothing_within(Duration::from_millis(300)).await;
    admin
        .activate_connector(ActivateConnectorRequest {
            id: created[0].id.clone(),
        })
        .await
        .expect("activate");
    let change = current.next().await;
    assert!(!change.full_snapshot);
    assert_eq!(change.version, missed.version + 1);
    assert_eq!(ids(&change).0, BTreeSet::from([created[0].id.clone()]));
    current
        .replies
        .send(WatchConfigRequest {
            message: Some(Message::Ack(eventconnectors_proto::v1::Ack {
                version: change.version,
            })),
        })
        .await
        .expect("ack");

    // A version the control plane never issued (e.g. a restored database): full snapshot.
    let mut unknown = RawWatch::open(&control_plane, "raw", 1_000_000).await;
    let resync = unknown.next().await;
    assert!(resync.full_snapshot);
    assert_eq!(resync.upserts.len(), 4);
    assert_eq!(resync.version, change.version);

    // A version older than the pruned log: full snapshot.
    let store = control_plane.store().await;
    let horizon = store.compact_changes(2).await.expect("compact");
    assert_eq!(horizon, change.version - 2);
    let mut old = RawWatch::open(&control_plane, "raw", seen).await;
    let resync = old.next().await;
    assert!(
        resync.full_snapshot,
        "older than the log: the whole world again"
    );
    assert_eq!(resync.upserts.len(), 4);
    let mut recent = RawWatch::open(&control_plane, "raw", change.version - 1).await;
    let exact = recent.next().await;
    assert!(
        !exact.full_snapshot,
        "still inside the log: just the change"
    );
    assert_eq!(ids(&exact).0, BTreeSet::from([created[0].id.clone()]));
    store.close().await;
}

async fn list_nodes_shows_versions_and_what_nodes_could_not_apply(db: Db) {
    let control_plane = ControlPlaneHandle::start(db).await;
    let mut admin = control_plane.admin().await;
    let good = admin
        .create_connector(create(meta_connector("ws-1", "Meta")))
        .await
        .expect("create")
        .into_inner();
    let nodes = start_nodes(2, &[control_plane.url()]).await;
    all_nodes(&nodes, "connector", |s| s.connector(&good.id).is_some()).await;

    let mut config = ConfigServiceClient::new(control_plane.channel().await);
    let list = |config: &mut ConfigServiceClient<tonic::transport::Channel>| {
        let request = with_token(ListNodesRequest {}, ADMIN_TOKEN);
        let mut config = config.clone();
        async move {
            config
                .list_nodes(request)
                .await
                .expect("list nodes")
                .into_inner()
                .nodes
        }
    };
    let version = nodes[0].config().current().expect("snapshot").version();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let listed = list(&mut config).await;
        let ready = listed.len() == 2
            && listed
                .iter()
                .all(|n| n.connected && n.applied_version == version);
        if ready {
            assert_eq!(listed[0].node_id, "node-0");
            assert!(
                listed
                    .iter()
                    .all(|n| n.last_seen.is_some() && n.rejections.is_empty())
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ListNodes never showed both nodes at {version}: {listed:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A connector the nodes cannot understand (a partner their catalog lacks),
    // written straight into the store as a newer control plane might.
    let store = control_plane.store().await;
    let mut record = store.get(&good.id).await.expect("stored");
    record.id = uuid::Uuid::now_v7().to_string();
    record.partner = "myspace".into();
    record.sealed_secrets =
        control_plane::secrets::SecretBox::from_base64(e2e_tests::control_plane::SECRETS_KEY)
            .expect("key")
            .seal(&record.id, &Default::default());
    store
        .insert(&control_plane::store::NewConnector {
            record: record.clone(),
            request_id: None,
        })
        .await
        .expect("insert");
    // Another replica's write reaches this one through NOTIFY or the poll.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let listed = list(&mut config).await;
        let reported = listed.iter().all(|n| {
            n.rejections.len() == 1
                && n.rejections[0].connector_id == record.id
                && n.rejections[0].reason.contains("unknown partner `myspace`")
        });
        if reported && listed.len() == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rejections never reported: {listed:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for node in &nodes {
        let snapshot = node.config().current().expect("snapshot");
        assert!(
            snapshot.connector(&record.id).is_none(),
            "what a node cannot apply it does not use"
        );
        assert!(snapshot.connector(&good.id).is_some());
    }
    store.close().await;

    let mut nodes = nodes;
    nodes.pop().expect("two nodes").stop().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let listed = list(&mut config).await;
        if listed.iter().any(|n| n.node_id == "node-1" && !n.connected) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a stopped node still shows connected: {listed:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn the_feed_requires_the_node_token_and_list_nodes_the_admin_token(db: Db) {
    let control_plane = ControlPlaneHandle::start(db).await;
    let mut config = ConfigServiceClient::new(control_plane.channel().await);
    for header in [
        None,
        Some(format!("Bearer {ADMIN_TOKEN}")),
        Some("Bearer nope".to_owned()),
    ] {
        let subscribe = WatchConfigRequest {
            message: Some(Message::Subscribe(Subscribe {
                node_id: "n".into(),
                last_applied_version: 0,
            })),
        };
        let mut request = Request::new(tokio_stream::iter(vec![subscribe]));
        if let Some(value) = &header {
            request
                .metadata_mut()
                .insert("authorization", value.parse().expect("ascii"));
        }
        let status = config.watch_config(request).await.expect_err("refused");
        assert_eq!(status.code(), Code::Unauthenticated, "{header:?}");
    }
    let status = config
        .list_nodes(with_token(ListNodesRequest {}, NODE_TOKEN))
        .await
        .expect_err("node token cannot list");
    assert_eq!(status.code(), Code::Unauthenticated);

    // A stream must start with `subscribe`.
    let ack = WatchConfigRequest {
        message: Some(Message::Ack(eventconnectors_proto::v1::Ack { version: 1 })),
    };
    let request = with_token(tokio_stream::iter(vec![ack]), NODE_TOKEN);
    let status = config
        .watch_config(request)
        .await
        .expect_err("no subscribe");
    assert_eq!(status.code(), Code::InvalidArgument);
}
