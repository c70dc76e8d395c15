//! The tenant boundary, end to end on Postgres and SQLite: API keys scoped
//! to one workspace reach that workspace and nothing else, on the control
//! plane, the node and the stats service; revocation holds everywhere at
//! once; and the stats service's directory carries no partner credential.

use std::time::{Duration, Instant};

use e2e_tests::control_plane::{ADMIN_TOKEN, ControlPlaneHandle, Db, Options};
use e2e_tests::fixtures::{create, mask, webhook_connector};
use e2e_tests::partners::{FakePartner, Webhook};
use e2e_tests::platform::{Platform, event};
use e2e_tests::stats::{DIRECTORY_TOKEN, OUTCOMES_TOKEN, STATS_ADMIN_TOKEN};
use e2e_tests::with_token;
use eventconnectors_proto::v1::api_key_service_client::ApiKeyServiceClient;
use eventconnectors_proto::v1::config_service_client::ConfigServiceClient;
use eventconnectors_proto::v1::connector_service_client::ConnectorServiceClient;
use eventconnectors_proto::v1::stats_service_client::StatsServiceClient;
use eventconnectors_proto::v1::watch_config_request::Message;
use eventconnectors_proto::v1::{
    ActivateConnectorRequest, Connector, CreateApiKeyRequest, DeactivateConnectorRequest,
    DeleteConnectorRequest, DeleteConnectorStatsRequest, GetConnectorRequest,
    GetConnectorStatsRequest, IngestRequest, ListApiKeysRequest, ListConnectorsRequest,
    ListNodesRequest, ListPartnersRequest, RejectReason, RevokeApiKeyRequest, StatsPreset,
    Subscribe, UpdateConnectorRequest, WatchConfigRequest,
};
use tonic::Code;
use tonic::transport::Channel;

const SECOND: Duration = Duration::from_secs(1);

e2e_tests::each_backend!(
    [postgres => super::Db::Postgres, sqlite => super::Db::Sqlite],
    [
        a_workspace_admin_key_reaches_its_workspace_and_nothing_else,
        an_ingest_key_ingests_into_its_workspace_only,
        revoking_an_ingest_key_stops_it_on_the_node_within_a_second,
        revoking_an_admin_key_stops_it_on_every_replica_at_once,
        keys_are_shown_once_stored_as_hashes_and_listed_by_scope,
        keys_per_workspace_are_capped,
        the_stats_service_sees_owners_and_key_hashes_never_credentials,
    ]
);

/// Creates a key with `scope` as `creator` and returns (id, secret).
async fn new_key(channel: &Channel, creator: &str, scope: &str) -> (String, String) {
    let created = ApiKeyServiceClient::new(channel.clone())
        .create_api_key(with_token(
            CreateApiKeyRequest {
                scope: scope.to_owned(),
                description: format!("test key {scope}"),
            },
            creator,
        ))
        .await
        .unwrap_or_else(|status| panic!("create {scope} key: {status:?}"))
        .into_inner();
    let key = created.api_key.expect("the key");
    (key.id, created.secret)
}

async fn connector(channel: &Channel, workspace: &str, url: &str) -> Connector {
    ConnectorServiceClient::new(channel.clone())
        .create_connector(with_token(
            create(webhook_connector(workspace, "hook", url)),
            ADMIN_TOKEN,
        ))
        .await
        .expect("operator creates")
        .into_inner()
}

fn denied<T: std::fmt::Debug>(what: &str, result: Result<tonic::Response<T>, tonic::Status>) {
    let status = result.expect_err(what);
    assert_eq!(status.code(), Code::PermissionDenied, "{what}: {status:?}");
}

async fn a_workspace_admin_key_reaches_its_workspace_and_nothing_else(db: Db) {
    let platform = Platform::start_on(db, &[]).await;
    let channel = platform.control_plane.channel().await;
    let mine = connector(&channel, "ws-a", "https://a.example/hook").await;
    let theirs = connector(&channel, "ws-b", "https://b.example/hook").await;
    let (_, key) = new_key(&channel, ADMIN_TOKEN, "workspace:ws-a:admin").await;
    let (their_key_id, _) = new_key(&channel, ADMIN_TOKEN, "workspace:ws-b:ingest").await;
    let mut connectors = ConnectorServiceClient::new(channel.clone());
    let mut keys = ApiKeyServiceClient::new(channel.clone());
    let id = |c: &Connector| c.id.clone();

    // Its own workspace: every RPC works.
    let got = connectors
        .get_connector(with_token(GetConnectorRequest { id: id(&mine) }, &key))
        .await
        .expect("own connector")
        .into_inner();
    let listed = connectors
        .list_connectors(with_token(ListConnectorsRequest::default(), &key))
        .await
        .expect("own list")
        .into_inner();
    assert_eq!(
        listed.connectors.iter().map(id).collect::<Vec<_>>(),
        [id(&mine)],
        "an unfiltered list is the key's workspace only"
    );
    let renamed = connectors
        .update_connector(with_token(
            UpdateConnectorRequest {
                connector: Some(Connector {
                    name: "renamed".into(),
                    ..got.clone()
                }),
                update_mask: mask(&["name"]),
            },
            &key,
        ))
        .await
        .expect("own update")
        .into_inner();
    assert_eq!(renamed.name, "renamed");
    connectors
        .create_connector(with_token(
            create(webhook_connector("ws-a", "second", "https://a.example/2")),
            &key,
        ))
        .await
        .expect("create in own workspace");
    connectors
        .list_partners(with_token(ListPartnersRequest {}, &key))
        .await
        .expect("the catalog is for everyone");
    let own_stats = StatsServiceClient::new(platform.stats.channel().await)
        .get_connector_stats(with_token(
            GetConnectorStatsRequest {
                connector_id: id(&mine),
                preset: StatsPreset::Last7Days as i32,
                ..Default::default()
            },
            &key,
        ))
        .await;
    assert!(own_stats.is_ok(), "own statistics: {own_stats:?}");

    // The other workspace: every RPC is PERMISSION_DENIED.
    denied(
        "get",
        connectors
            .get_connector(with_token(GetConnectorRequest { id: id(&theirs) }, &key))
            .await,
    );
    denied(
        "list",
        connectors
            .list_connectors(with_token(
                ListConnectorsRequest {
                    workspace_id: "ws-b".into(),
                    ..Default::default()
                },
                &key,
            ))
            .await,
    );
    denied(
        "update",
        connectors
            .update_connector(with_token(
                UpdateConnectorRequest {
                    connector: Some(Connector {
                        name: "mine now".into(),
                        ..theirs.clone()
                    }),
                    update_mask: mask(&["name"]),
                },
                &key,
            ))
            .await,
    );
    denied(
        "create",
        connectors
            .create_connector(with_token(
                create(webhook_connector("ws-b", "x", "https://b.example/x")),
                &key,
            ))
            .await,
    );
    denied(
        "deactivate",
        connectors
            .deactivate_connector(with_token(
                DeactivateConnectorRequest { id: id(&theirs) },
                &key,
            ))
            .await,
    );
    denied(
        "activate",
        connectors
            .activate_connector(with_token(
                ActivateConnectorRequest { id: id(&theirs) },
                &key,
            ))
            .await,
    );
    denied(
        "delete",
        connectors
            .delete_connector(with_token(DeleteConnectorRequest { id: id(&theirs) }, &key))
            .await,
    );
    denied(
        "list nodes",
        ConfigServiceClient::new(channel.clone())
            .list_nodes(with_token(ListNodesRequest {}, &key))
            .await,
    );
    for scope in ["workspace:ws-b:admin", "workspace:ws-b:ingest", "operator"] {
        denied(
            scope,
            keys.create_api_key(with_token(
                CreateApiKeyRequest {
                    scope: scope.into(),
                    description: String::new(),
                },
                &key,
            ))
            .await,
        );
    }
    let (_, own_ingest) = new_key(&channel, ADMIN_TOKEN, "workspace:ws-a:ingest").await;
    denied(
        "an ingest key lists no keys",
        keys.list_api_keys(with_token(ListApiKeysRequest::default(), &own_ingest))
            .await,
    );
    denied(
        "an ingest key lists no connectors",
        connectors
            .list_connectors(with_token(ListConnectorsRequest::default(), &own_ingest))
            .await,
    );
    denied(
        "list keys",
        keys.list_api_keys(with_token(
            ListApiKeysRequest {
                workspace_id: "ws-b".into(),
                include_revoked: true,
            },
            &key,
        ))
        .await,
    );
    denied(
        "revoke key",
        keys.revoke_api_key(with_token(RevokeApiKeyRequest { id: their_key_id }, &key))
            .await,
    );
    let mut stats = StatsServiceClient::new(platform.stats.channel().await);
    denied(
        "stats",
        stats
            .get_connector_stats(with_token(
                GetConnectorStatsRequest {
                    connector_id: id(&theirs),
                    preset: StatsPreset::Last7Days as i32,
                    ..Default::default()
                },
                &key,
            ))
            .await,
    );
    denied(
        "erase stats",
        stats
            .delete_connector_stats(with_token(
                DeleteConnectorStatsRequest {
                    connector_id: id(&mine),
                },
                &key,
            ))
            .await,
    );

    // Nothing of theirs changed.
    let after = ConnectorServiceClient::new(channel)
        .get_connector(with_token(
            GetConnectorRequest { id: id(&theirs) },
            ADMIN_TOKEN,
        ))
        .await
        .expect("operator reads")
        .into_inner();
    assert_eq!(after, theirs);
}

async fn an_ingest_key_ingests_into_its_workspace_only(db: Db) {
    let partner = FakePartner::start(&Webhook).await;
    let platform = Platform::start_on(db, &[]).await;
    let channel = platform.control_plane.channel().await;
    let mine = connector(&channel, "ws-a", &partner.url()).await;
    connector(&channel, "ws-b", &partner.url()).await;
    let (_, ingest) = new_key(&channel, ADMIN_TOKEN, "workspace:ws-a:ingest").await;
    let (_, admin) = new_key(&channel, ADMIN_TOKEN, "workspace:ws-a:admin").await;
    let node = platform.node();
    node.wait_for_lane(&mine.id, true, 5 * SECOND).await;
    node.wait_for("both keys", 5 * SECOND, |snapshot| {
        snapshot.keys().len() == 2
    })
    .await;
    let mut client = node.ingest_client().await;
    let batch = |events: Vec<String>| IngestRequest {
        events,
        sequence: 7,
    };
    let response = client
        .ingest(with_token(
            batch(vec![
                event("to-b", "ws-b", "Purchase", serde_json::json!({})),
                event("to-a", "ws-a", "Purchase", serde_json::json!({})),
                r#"{"id":"no-workspace","type":"Purchase"}"#.to_owned(),
            ]),
            &ingest,
        ))
        .await
        .expect("ingest")
        .into_inner();
    assert_eq!(response.accepted, 2, "{response:?}");
    assert_eq!(response.rejected.len(), 1);
    let rejection = &response.rejected[0];
    assert_eq!(
        (rejection.index, rejection.reason),
        (0, RejectReason::WrongWorkspace as i32)
    );
    assert!(rejection.detail.contains("ws-a"), "{}", rejection.detail);

    partner.wait_for_requests(2, 5 * SECOND).await;
    let mut bodies: Vec<_> = partner.requests().into_iter().map(|r| r.body).collect();
    bodies.sort_by_key(|body| body["id"].as_str().unwrap_or_default().to_owned());
    assert_eq!(bodies[0]["id"], "no-workspace");
    assert_eq!(
        bodies[0]["workspace_id"], "ws-a",
        "the key's workspace is filled in, and forwarded"
    );
    assert_eq!(bodies[1]["id"], "to-a");

    let status = client
        .ingest(with_token(batch(vec![]), &admin))
        .await
        .expect_err("an admin key does not ingest");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(
        status.message().contains("workspace:ws-a:ingest"),
        "{status:?}"
    );
    // The bootstrap ingest token still ingests anywhere.
    let response = client
        .ingest(with_token(
            batch(vec![event(
                "boot",
                "ws-b",
                "Purchase",
                serde_json::json!({}),
            )]),
            e2e_tests::node::INGEST_TOKEN,
        ))
        .await
        .expect("bootstrap token")
        .into_inner();
    assert_eq!(response.accepted, 1);
    partner.wait_for_requests(3, 5 * SECOND).await;
    assert_eq!(
        partner.request_count(),
        3,
        "ws-b got only the bootstrap event"
    );
}

async fn revoking_an_ingest_key_stops_it_on_the_node_within_a_second(db: Db) {
    let platform = Platform::start_on(db, &[]).await;
    let channel = platform.control_plane.channel().await;
    connector(&channel, "ws-a", "https://a.example/hook").await;
    let (id, key) = new_key(&channel, ADMIN_TOKEN, "workspace:ws-a:ingest").await;
    let node = platform.node();
    node.wait_for("the key", 5 * SECOND, |snapshot| {
        !snapshot.keys().is_empty()
    })
    .await;
    let mut client = node.ingest_client().await;
    let one = || IngestRequest {
        events: vec![event("e", "ws-a", "Purchase", serde_json::json!({}))],
        sequence: 1,
    };
    client
        .ingest(with_token(one(), &key))
        .await
        .expect("valid key");
    // A stream opened before the revocation ends with it too.
    let (batches, outbound) = tokio::sync::mpsc::channel(4);
    batches.send(one()).await.expect("queued");
    let mut stream = client
        .ingest_stream(with_token(
            tokio_stream::wrappers::ReceiverStream::new(outbound),
            &key,
        ))
        .await
        .expect("stream opens")
        .into_inner();
    stream
        .message()
        .await
        .expect("first batch")
        .expect("answered");

    ApiKeyServiceClient::new(channel)
        .revoke_api_key(with_token(RevokeApiKeyRequest { id }, ADMIN_TOKEN))
        .await
        .expect("revoke");
    let revoked_at = Instant::now();
    loop {
        match client.ingest(with_token(one(), &key)).await {
            Err(status) if status.code() == Code::Unauthenticated => break,
            Err(status) => panic!("unexpected refusal: {status:?}"),
            Ok(_) => {
                assert!(
                    revoked_at.elapsed() < SECOND,
                    "the node still accepts the key {:?} after revocation",
                    revoked_at.elapsed()
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    batches.send(one()).await.expect("queued");
    let status = stream.message().await.expect_err("the stream ends");
    assert_eq!(status.code(), Code::Unauthenticated);
}

async fn revoking_an_admin_key_stops_it_on_every_replica_at_once(db: Db) {
    let first = ControlPlaneHandle::start(db).await;
    let second = ControlPlaneHandle::start_with(first.test_store.clone(), Options::default()).await;
    let (id, key) = new_key(&first.channel().await, ADMIN_TOKEN, "operator").await;
    let list = |channel: Channel, key: String| async move {
        ConnectorServiceClient::new(channel)
            .list_connectors(with_token(ListConnectorsRequest::default(), &key))
            .await
    };
    list(second.channel().await, key.clone())
        .await
        .expect("an operator key works on the other replica");
    let revoked = ApiKeyServiceClient::new(first.channel().await)
        .revoke_api_key(with_token(RevokeApiKeyRequest { id }, &key))
        .await
        .expect("a key may revoke itself")
        .into_inner();
    assert!(revoked.revoke_time.is_some());
    for channel in [first.channel().await, second.channel().await] {
        let status = list(channel, key.clone()).await.expect_err("revoked");
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    }
}

async fn keys_are_shown_once_stored_as_hashes_and_listed_by_scope(db: Db) {
    let control_plane = ControlPlaneHandle::start(db).await;
    let channel = control_plane.channel().await;
    let (a_id, a_admin) = new_key(&channel, ADMIN_TOKEN, "workspace:ws-a:admin").await;
    // A workspace admin creates its own workspace's keys.
    let (ingest_id, ingest) = new_key(&channel, &a_admin, "workspace:ws-a:ingest").await;
    new_key(&channel, ADMIN_TOKEN, "workspace:ws-b:admin").await;
    assert!(a_admin.starts_with("eck_") && ingest.starts_with("eck_"));

    let mut keys = ApiKeyServiceClient::new(channel.clone());
    ConnectorServiceClient::new(channel.clone())
        .list_connectors(with_token(ListConnectorsRequest::default(), &a_admin))
        .await
        .expect("use the admin key once");
    let listed = keys
        .list_api_keys(with_token(ListApiKeysRequest::default(), &a_admin))
        .await
        .expect("list own")
        .into_inner()
        .api_keys;
    let ids: Vec<_> = listed.iter().map(|k| k.id.as_str()).collect();
    assert_eq!(
        ids,
        [ingest_id.as_str(), a_id.as_str()],
        "newest first, own only"
    );
    assert_eq!(listed[1].prefix, a_admin[..12]);
    assert_eq!(listed[1].scope, "workspace:ws-a:admin");
    assert!(listed[1].last_used_time.is_some(), "its use is recorded");
    assert!(listed[0].last_used_time.is_none());

    let everything = keys
        .list_api_keys(with_token(ListApiKeysRequest::default(), ADMIN_TOKEN))
        .await
        .expect("operator lists all")
        .into_inner()
        .api_keys;
    assert_eq!(everything.len(), 3);
    let rendered = format!("{everything:?}");
    for secret in [&a_admin, &ingest] {
        assert!(
            !rendered.contains(secret.as_str()),
            "a listing shows no secret"
        );
    }

    // The store holds digests, never the keys.
    let store = control_plane.store().await;
    let stored = store.list_keys(None, true).await.expect("stored keys");
    for record in &stored {
        let text = format!("{record:?}");
        assert!(!text.contains(&a_admin[4..]) && !text.contains(&ingest[4..]));
        assert_eq!(record.sha256.len(), 64);
    }

    let invalid = keys
        .create_api_key(with_token(
            CreateApiKeyRequest {
                scope: "workspace:ws a:admin".into(),
                description: "x".repeat(201),
            },
            ADMIN_TOKEN,
        ))
        .await
        .expect_err("invalid");
    assert_eq!(invalid.code(), Code::InvalidArgument);
    assert!(invalid.message().contains("scope"), "{invalid:?}");
    let missing = keys
        .revoke_api_key(with_token(
            RevokeApiKeyRequest { id: "nope".into() },
            ADMIN_TOKEN,
        ))
        .await
        .expect_err("unknown key");
    assert_eq!(missing.code(), Code::NotFound);
    let unauthenticated = keys
        .list_api_keys(with_token(ListApiKeysRequest::default(), "eck_forged"))
        .await
        .expect_err("unknown credential");
    assert_eq!(unauthenticated.code(), Code::Unauthenticated);
}

async fn keys_per_workspace_are_capped(db: Db) {
    let control_plane = ControlPlaneHandle::start(db).await;
    let channel = control_plane.channel().await;
    let limit = control_plane::api::MAX_VALID_KEYS;
    let mut last = String::new();
    for _ in 0..limit {
        last = new_key(&channel, ADMIN_TOKEN, "workspace:busy:ingest")
            .await
            .0;
    }
    let mut keys = ApiKeyServiceClient::new(channel.clone());
    let request = || CreateApiKeyRequest {
        scope: "workspace:busy:admin".into(),
        description: String::new(),
    };
    let status = keys
        .create_api_key(with_token(request(), ADMIN_TOKEN))
        .await
        .expect_err("over the cap");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(status.message().contains("revoke"), "{status:?}");
    new_key(&channel, ADMIN_TOKEN, "workspace:other:admin").await;
    keys.revoke_api_key(with_token(RevokeApiKeyRequest { id: last }, ADMIN_TOKEN))
        .await
        .expect("revoke one");
    keys.create_api_key(with_token(request(), ADMIN_TOKEN))
        .await
        .expect("room again");
}

async fn the_stats_service_sees_owners_and_key_hashes_never_credentials(db: Db) {
    let control_plane = ControlPlaneHandle::start(db).await;
    let channel = control_plane.channel().await;
    let created = ConnectorServiceClient::new(channel.clone())
        .create_connector(with_token(
            create(e2e_tests::fixtures::meta_connector("ws-a", "meta")),
            ADMIN_TOKEN,
        ))
        .await
        .expect("create meta")
        .into_inner();
    let (_, key) = new_key(&channel, ADMIN_TOKEN, "workspace:ws-a:admin").await;
    ConnectorServiceClient::new(channel.clone())
        .deactivate_connector(with_token(
            DeactivateConnectorRequest {
                id: created.id.clone(),
            },
            ADMIN_TOKEN,
        ))
        .await
        .expect("deactivate");

    let mut config = ConfigServiceClient::new(channel.clone());
    let subscribe = || {
        tokio_stream::iter(vec![WatchConfigRequest {
            message: Some(Message::Subscribe(Subscribe {
                node_id: "stats".into(),
                last_applied_version: 0,
            })),
        }])
    };
    let snapshot = config
        .watch_config(with_token(subscribe(), DIRECTORY_TOKEN))
        .await
        .expect("the directory token opens the directory")
        .into_inner()
        .message()
        .await
        .expect("snapshot")
        .expect("open");
    assert_eq!(snapshot.upserts.len(), 1, "inactive connectors are listed");
    let entry = &snapshot.upserts[0];
    assert_eq!(
        (entry.id.as_str(), entry.workspace_id.as_str()),
        (created.id.as_str(), "ws-a")
    );
    assert!(entry.settings.is_empty() && entry.secrets.is_empty() && entry.mappings.is_empty());
    assert_eq!(snapshot.key_upserts.len(), 1);
    let rendered = format!("{snapshot:?}");
    assert!(!rendered.contains(e2e_tests::fixtures::META_TOKEN));
    assert!(!rendered.contains(&key));
    assert_eq!(
        snapshot.key_upserts[0].sha256,
        server_kit::access::digest(key.as_bytes())
    );

    // No other credential opens it; the stats service's own tokens open
    // nothing on the control plane, and the node token nothing there.
    for token in [OUTCOMES_TOKEN, STATS_ADMIN_TOKEN, key.as_str()] {
        let status = config
            .watch_config(with_token(subscribe(), token))
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::Unauthenticated, "{token}");
    }
    let listed = ConfigServiceClient::new(channel)
        .list_nodes(with_token(ListNodesRequest {}, ADMIN_TOKEN))
        .await
        .expect("list nodes")
        .into_inner();
    assert!(
        listed.nodes.iter().all(|n| n.node_id != "stats"),
        "a directory stream is not a node"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_before_the_first_configuration_is_told_to_retry() {
    // No control plane answers there: the node has no configuration, so it
    // cannot know the key yet.
    let unreachable = "http://127.0.0.1:9".to_owned();
    let node = e2e_tests::node::NodeHandle::start("no-config-yet", &[unreachable]).await;
    let status = node
        .ingest_client()
        .await
        .ingest(with_token(
            IngestRequest::default(),
            "eck_0000000000000000000000000000000000000000000",
        ))
        .await
        .expect_err("no configuration yet");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
}

#[test]
fn a_node_id_too_long_for_outcome_batch_ids_stops_the_start() {
    use clap::Parser;
    let long = "n".repeat(96);
    let args = data_plane::args::Args::try_parse_from([
        "data-plane",
        "--node-token",
        "n",
        "--ingest-token",
        "i",
        "--node-id",
        &long,
    ])
    .expect("flags parse");
    let error = data_plane::node::DataPlane::new(&args).expect_err("refused");
    assert!(error.to_string().contains("NODE_ID"), "{error}");
}
