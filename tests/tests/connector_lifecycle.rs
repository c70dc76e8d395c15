//! ConnectorService end to end: a real tonic client against a real server on
//! a loopback port, every case on both Postgres and SQLite.

use std::collections::BTreeMap;

use base64::Engine;
use e2e_tests::control_plane::{ADMIN_TOKEN, ControlPlaneHandle, Db};
use e2e_tests::fixtures::{META_TOKEN, create, mask, meta_connector};
use eventconnectors_proto::v1::connector_service_client::ConnectorServiceClient;
use eventconnectors_proto::v1::{
    ActivateConnectorRequest, Connector, ConnectorStatus, CreateConnectorRequest,
    DeactivateConnectorRequest, DeleteConnectorRequest, GetConnectorRequest, ListConnectorsRequest,
    ListPartnersRequest, UpdateConnectorRequest,
};
use prost::Message;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

e2e_tests::each_backend!(
    [postgres => super::Db::Postgres, sqlite => super::Db::Sqlite],
    [
    lifecycle_create_get_list_deactivate_activate_delete,
        every_invalid_create_names_its_field,
        invalid_update_list_and_get_requests_name_their_field,
        missing_or_wrong_token_is_unauthenticated_but_health_is_open,
        concurrent_updates_one_wins_the_rest_are_aborted,
        secrets_never_leave_and_are_sealed_at_rest,
        a_retried_create_with_the_same_request_id_returns_the_same_connector,
        pagination_and_filters_cover_every_connector_once,
        update_replaces_only_masked_fields,
    ]
);

/// The fields named by the status's google.rpc.BadRequest detail.
fn violated_fields(status: &Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let bad_request = status
        .get_details_bad_request()
        .unwrap_or_else(|| panic!("INVALID_ARGUMENT without BadRequest details: {status:?}"));
    bad_request
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect()
}

async fn lifecycle_create_get_list_deactivate_activate_delete(db: Db) {
    let server = ControlPlaneHandle::start(db).await;
    let mut admin = server.admin().await;

    let partners = admin
        .list_partners(ListPartnersRequest {})
        .await
        .expect("partners")
        .into_inner();
    let ids: Vec<_> = partners.partners.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "ga4",
            "meta_capi",
            "pinterest",
            "snapchat",
            "tiktok",
            "webhook"
        ]
    );

    let created = admin
        .create_connector(create(meta_connector("ws-1", "  Meta prod  ")))
        .await
        .expect("create")
        .into_inner();
    assert!(!created.id.is_empty());
    assert_eq!(
        created.status,
        ConnectorStatus::Active as i32,
        "active at once"
    );
    assert_eq!(created.version, 1);
    assert_eq!(created.name, "Meta prod", "name is trimmed");
    assert_eq!(created.secret_names, ["access_token"]);
    assert!(created.secrets.is_empty());
    assert_eq!(created.mappings, meta_connector("", "").mappings);
    assert_eq!(created.filter, meta_connector("", "").filter);
    assert!(created.create_time.is_some() && created.update_time == created.create_time);

    let fetched = admin
        .get_connector(GetConnectorRequest {
            id: created.id.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(fetched, created);

    let listed = admin
        .list_connectors(ListConnectorsRequest {
            workspace_id: "ws-1".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.connectors, std::slice::from_ref(&created));
    assert!(listed.next_page_token.is_empty());

    let deactivated = admin
        .deactivate_connector(DeactivateConnectorRequest {
            id: created.id.clone(),
        })
        .await
        .expect("deactivate")
        .into_inner();
    assert_eq!(deactivated.status, ConnectorStatus::Inactive as i32);
    assert_eq!(deactivated.version, 2);
    let again = admin
        .deactivate_connector(DeactivateConnectorRequest {
            id: created.id.clone(),
        })
        .await
        .expect("deactivate is idempotent")
        .into_inner();
    assert_eq!(again, deactivated, "a repeated deactivate changes nothing");

    let inactive = admin
        .list_connectors(ListConnectorsRequest {
            status: ConnectorStatus::Inactive as i32,
            ..Default::default()
        })
        .await
        .expect("list inactive")
        .into_inner();
    assert_eq!(inactive.connectors.len(), 1);

    let activated = admin
        .activate_connector(ActivateConnectorRequest {
            id: created.id.clone(),
        })
        .await
        .expect("activate")
        .into_inner();
    assert_eq!(activated.status, ConnectorStatus::Active as i32);
    assert_eq!(activated.version, 3);
    let again = admin
        .activate_connector(ActivateConnectorRequest {
            id: created.id.clone(),
        })
        .await
        .expect("activate is idempotent")
        .into_inner();
    assert_eq!(again.version, 3);

    admin
        .delete_connector(DeleteConnectorRequest {
            id: created.id.clone(),
        })
        .await
        .expect("delete");
    for status in [
        admin
            .get_connector(GetConnectorRequest {
                id: created.id.clone(),
            })
            .await
            .expect_err("gone"),
        admin
            .delete_connector(DeleteConnectorRequest {
                id: created.id.clone(),
            })
            .await
            .expect_err("gone"),
        admin
            .activate_connector(ActivateConnectorRequest {
                id: created.id.clone(),
            })
            .await
            .expect_err("gone"),
    ] {
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
    }
    let remaining = admin
        .list_connectors(ListConnectorsRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert!(remaining.connectors.is_empty());

    // The deletion is recorded durably so the statistics erase can be carried out.
    let store = server.store().await;
    assert_eq!(
        store.pending_stats_erasures(10).await.expect("pending"),
        std::slice::from_ref(&created.id)
    );
    store.close().await;

    server.stop().await.expect("graceful stop");
}

/// Validation itself is unit-tested case by case beside it
/// (`proto/partners/src/validation.rs`); here, that its findings reach the
/// caller: INVALID_ARGUMENT, a BadRequest detail naming each field, the
/// same fields in the message, and nothing stored.
async fn every_invalid_create_names_its_field(db: Db) {
    let server = ControlPlaneHandle::start(db).await;
    let mut admin = server.admin().await;
    let whsec = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode([9u8; 32])
    );

    let mut connector = meta_connector("ws-1", "Meta");
    connector.settings.insert("pixel_id".into(), "12ab".into());
    let status = admin
        .create_connector(create(connector))
        .await
        .expect_err("a pixel id that is not a number");
    assert_eq!(violated_fields(&status), ["connector.settings.pixel_id"]);
    assert!(
        status.message().contains("connector.settings.pixel_id"),
        "the message names the field: {}",
        status.message()
    );

    // Several problems come back together, each with its field.
    let mut connector = meta_connector("", " ");
    connector.settings.clear();
    connector.secrets.clear();
    let fields = violated_fields(
        &admin
            .create_connector(create(connector))
            .await
            .expect_err("invalid"),
    );
    for field in [
        "connector.workspace_id",
        "connector.name",
        "connector.settings.pixel_id",
        "connector.secrets.access_token",
    ] {
        assert!(
            fields.iter().any(|f| f == field),
            "{field} missing from {fields:?}"
        );
    }

    let status = admin
        .create_connector(CreateConnectorRequest {
            connector: None,
            request_id: String::new(),
        })
        .await
        .expect_err("no connector");
    assert_eq!(violated_fields(&status), ["connector"]);
    let status = admin
        .create_connector(CreateConnectorRequest {
            connector: Some(meta_connector("ws-1", "Meta")),
            request_id: "r".repeat(129),
        })
        .await
        .expect_err("long request id");
    assert_eq!(violated_fields(&status), ["request_id"]);

    // A valid webhook with every optional setting passes, and nothing invalid was stored.
    let mut webhook = meta_connector("ws-1", "Hook");
    webhook.partner = "webhook".into();
    webhook.settings = BTreeMap::from([
        ("url".into(), "https://example.com/hook".into()),
        ("header.X-Team".into(), "growth".into()),
    ]);
    webhook.secrets = BTreeMap::from([
        ("signing_secret".into(), whsec),
        ("authorization".into(), "Bearer abc".into()),
        ("header.X-Api-Key".into(), "k3y-never-shown".into()),
    ]);
    webhook.mappings.clear();
    let created = admin
        .create_connector(create(webhook))
        .await
        .expect("valid webhook")
        .into_inner();
    assert_eq!(
        created.secret_names,
        ["authorization", "header.X-Api-Key", "signing_secret"],
        "a secret header is a secret: named, never shown"
    );
    assert!(!format!("{created:?}").contains("k3y-never-shown"));
    let all = admin
        .list_connectors(ListConnectorsRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert_eq!(all.connectors.len(), 1, "no invalid connector was stored");
}

async fn invalid_update_list_and_get_requests_name_their_field(db: Db) {
    let server = ControlPlaneHandle::start(db).await;
    let mut admin = server.admin().await;
    let created = admin
        .create_connector(create(meta_connector("ws-1", "Meta")))
        .await
        .expect("create")
        .into_inner();

    let update = |connector: Connector, paths: &[&str]| UpdateConnectorRequest {
        connector: Some(connector),
        update_mask: mask(paths),
    };
    let cases = [
        ("update_mask", update(created.clone(), &[])),
        (
            "update_mask.paths[1]",
            update(created.clone(), &["name", "partner"]),
        ),
        (
            "connector.version",
            update(
                Connector {
                    version: 0,
                    ..created.clone()
                },
                &["name"],
            ),
        ),
        (
            "connector.id",
            update(
                Connector {
                    id: String::new(),
                    ..created.clone()
                },
                &["name"],
            ),
        ),
        (
            "connector.name",
            update(
                Connector {
                    name: String::new(),
                    ..created.clone()
                },
                &["name"],
            ),
        ),
        (
            "connector.secrets.access_token",
            update(
                Connector {
                    secrets: BTreeMap::new(),
                    ..created.clone()
                },
                &["secrets"],
            ),
        ),
    ];
    for (field, request) in cases {
        let status = admin.update_connector(request).await.expect_err(field);
        assert!(
            violated_fields(&status).iter().any(|f| f == field),
            "{field}: {status:?}"
        );
    }
    let unchanged = admin
        .get_connector(GetConnectorRequest {
            id: created.id.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(unchanged, created, "rejected updates change nothing");

    let status = admin
        .update_connector(update(
            Connector {
                id: "no-such-connector".into(),
                ..created.clone()
            },
            &["name"],
        ))
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);

    for (field, request) in [
        (
            "page_size",
            ListConnectorsRequest {
                page_size: -1,
                ..Default::default()
            },
        ),
        (
            "page_token",
            ListConnectorsRequest {
                page_token: "garbage".into(),
                ..Default::default()
            },
        ),
        (
            "workspace_id",
            ListConnectorsRequest {
                workspace_id: "bad workspace".into(),
                ..Default::default()
            },
        ),
        (
            "status",
            ListConnectorsRequest {
                status: 42,
                ..Default::default()
            },
        ),
    ] {
        let status = admin.list_connectors(request).await.expect_err(field);
        assert_eq!(violated_fields(&status), [field]);
    }
    let status = admin
        .get_connector(GetConnectorRequest { id: String::new() })
        .await
        .expect_err("empty id");
    assert_eq!(violated_fields(&status), ["id"]);
    let status = admin
        .deactivate_connector(DeactivateConnectorRequest { id: String::new() })
        .await
        .expect_err("empty id");
    assert_eq!(violated_fields(&status), ["id"]);
}

async fn missing_or_wrong_token_is_unauthenticated_but_health_is_open(db: Db) {
    let server = ControlPlaneHandle::start(db).await;
    let channel = server.channel().await;
    let mut anonymous = ConnectorServiceClient::new(channel.clone());

    let status = anonymous
        .list_partners(ListPartnersRequest {})
        .await
        .expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated);
    for header in [
        "Bearer wrong-token",
        &format!("Bearer {ADMIN_TOKEN}x"),
        ADMIN_TOKEN,
        "Basic abc",
    ] {
        let mut request = Request::new(create(meta_connector("ws-1", "Meta")));
        request
            .metadata_mut()
            .insert("authorization", header.parse().expect("ascii"));
        let status = anonymous.create_connector(request).await.expect_err(header);
        assert_eq!(status.code(), Code::Unauthenticated, "{header}");
    }
    let mut admin = server.admin().await;
    let listed = admin
        .list_connectors(ListConnectorsRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert!(
        listed.connectors.is_empty(),
        "refused creates stored nothing"
    );

    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    for service in ["", "eventconnectors.v1.ConnectorService"] {
        let reply = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .expect("health needs no token")
            .into_inner();
        assert_eq!(
            reply.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );
    }
}

async fn concurrent_updates_one_wins_the_rest_are_aborted(db: Db) {
    let server = ControlPlaneHandle::start(db).await;
    let admin = server.admin().await;
    let created = admin
        .clone()
        .create_connector(create(meta_connector("ws-1", "Meta")))
        .await
        .expect("create")
        .into_inner();

    let writers = 8;
    let results = futures::future::join_all((0..writers).map(|writer| {
        let mut admin = admin.clone();
        let connector = Connector {
            name: format!("writer {writer}"),
            ..created.clone()
        };
        async move {
            admin
                .update_connector(UpdateConnectorRequest {
                    connector: Some(connector),
                    update_mask: mask(&["name"]),
                })
                .await
        }
    }))
    .await;
    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one update based on version 1 wins: {results:?}"
    );
    for result in &results {
        if let Err(status) = result {
            assert_eq!(status.code(), Code::Aborted, "{status:?}");
        }
    }
    let stored = admin
        .clone()
        .get_connector(GetConnectorRequest {
            id: created.id.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(stored.version, 2);
    assert_eq!(
        stored.name,
        winners[0].get_ref().name,
        "the stored name is the winner's"
    );

    // A stale version is refused even when no one else is writing.
    let status = admin
        .clone()
        .update_connector(UpdateConnectorRequest {
            connector: Some(Connector {
                name: "stale".into(),
                ..created
            }),
            update_mask: mask(&["name"]),
        })
        .await
        .expect_err("stale");
    assert_eq!(status.code(), Code::Aborted);
    assert!(
        status.message().contains("version 2"),
        "{}",
        status.message()
    );
}

async fn secrets_never_leave_and_are_sealed_at_rest(db: Db) {
    let server = ControlPlaneHandle::start(db).await;
    let mut admin = server.admin().await;
    let leaks = |bytes: &[u8]| String::from_utf8_lossy(bytes).contains(META_TOKEN);

    let created = admin
        .create_connector(create(meta_connector("ws-1", "Meta")))
        .await
        .expect("create")
        .into_inner();
    let mut responses = vec![created.encode_to_vec()];
    responses.push(
        admin
            .get_connector(GetConnectorRequest {
                id: created.id.clone(),
            })
            .await
            .expect("get")
            .into_inner()
            .encode_to_vec(),
    );
    responses.push(
        admin
            .list_connectors(ListConnectorsRequest::default())
            .await
            .expect("list")
            .into_inner()
            .encode_to_vec(),
    );
    let updated = admin
        .update_connector(UpdateConnectorRequest {
            connector: Some(Connector {
                secrets: meta_connector("", "").secrets,
                ..created.clone()
            }),
            update_mask: mask(&["secrets", "name"]),
        })
        .await
        .expect("update with secrets")
        .into_inner();
    responses.push(updated.encode_to_vec());
    responses.push(
        admin
            .deactivate_connector(DeactivateConnectorRequest {
                id: created.id.clone(),
            })
            .await
            .expect("deactivate")
            .into_inner()
            .encode_to_vec(),
    );
    responses.push(
        admin
            .activate_connector(ActivateConnectorRequest {
                id: created.id.clone(),
            })
            .await
            .expect("activate")
            .into_inner()
            .encode_to_vec(),
    );
    // An invalid request's error must not echo the secret either.
    let mut invalid = meta_connector("ws-1", "");
    invalid.secrets.insert("bogus".into(), META_TOKEN.into());
    let status = admin
        .create_connector(create(invalid))
        .await
        .expect_err("invalid");
    responses.push(status.message().as_bytes().to_vec());
    responses.push(status.details().to_vec());
    for (index, response) in responses.iter().enumerate() {
        assert!(!leaks(response), "response {index} carries the secret");
    }
    assert_eq!(updated.secret_names, ["access_token"]);

    // At rest: no column holds the token in clear, and it opens with the key.
    let store = server.store().await;
    let record = store.get(&created.id).await.expect("stored");
    assert!(!leaks(&record.sealed_secrets));
    let key = control_plane::secrets::SecretBox::from_base64(e2e_tests::control_plane::SECRETS_KEY)
        .expect("key");
    assert_eq!(
        key.open(&created.id, &record.sealed_secrets)
            .expect("opens")["access_token"],
        META_TOKEN
    );
    store.close().await;
}

async fn a_retried_create_with_the_same_request_id_returns_the_same_connector(db: Db) {
    let server = ControlPlaneHandle::start(db).await;
    let mut admin = server.admin().await;
    let request = |workspace: &str| CreateConnectorRequest {
        connector: Some(meta_connector(workspace, "Meta")),
        request_id: "req-7f3a".into(),
    };
    let first = admin
        .create_connector(request("ws-1"))
        .await
        .expect("first")
        .into_inner();
    let retried = admin
        .create_connector(request("ws-1"))
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(retried, first);
    let elsewhere = admin
        .create_connector(request("ws-2"))
        .await
        .expect("other workspace")
        .into_inner();
    assert_ne!(
        elsewhere.id, first.id,
        "request ids are scoped to their workspace"
    );
    let without_id = admin
        .create_connector(create(meta_connector("ws-1", "Meta")))
        .await
        .expect("no id");
    let again_without_id = admin
        .create_connector(create(meta_connector("ws-1", "Meta")))
        .await
        .expect("no id");
    assert_ne!(without_id.get_ref().id, again_without_id.get_ref().id);
    let all = admin
        .list_connectors(ListConnectorsRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert_eq!(all.connectors.len(), 4);
}

async fn pagination_and_filters_cover_every_connector_once(db: Db) {
    let server = ControlPlaneHandle::start(db).await;
    let mut admin = server.admin().await;
    let mut created = Vec::new();
    for index in 0..7 {
        let workspace = if index % 2 == 0 { "ws-even" } else { "ws-odd" };
        let connector = admin
            .create_connector(create(meta_connector(workspace, &format!("c{index}"))))
            .await
            .expect("create")
            .into_inner();
        created.push(connector);
    }
    admin
        .deactivate_connector(DeactivateConnectorRequest {
            id: created[2].id.clone(),
        })
        .await
        .expect("deactivate");

    let collect = |workspace: &'static str, status: ConnectorStatus, page_size: i32| {
        let mut admin = admin.clone();
        async move {
            let mut names = Vec::new();
            let mut token = String::new();
            let mut pages = 0;
            loop {
                let page = admin
                    .list_connectors(ListConnectorsRequest {
                        workspace_id: workspace.into(),
                        status: status as i32,
                        page_size,
                        page_token: token,
                    })
                    .await
                    .expect("page")
                    .into_inner();
                pages += 1;
                assert!(page.connectors.len() <= page_size as usize);
                names.extend(page.connectors.into_iter().map(|c| c.name));
                if page.next_page_token.is_empty() {
                    return (names, pages);
                }
                token = page.next_page_token;
            }
        }
    };
    let (all, pages) = collect("", ConnectorStatus::StatusUnspecified, 3).await;
    assert_eq!(
        all,
        ["c0", "c1", "c2", "c3", "c4", "c5", "c6"],
        "creation order, each once"
    );
    assert_eq!(pages, 3);
    let (even, _) = collect("ws-even", ConnectorStatus::StatusUnspecified, 2).await;
    assert_eq!(even, ["c0", "c2", "c4", "c6"]);
    let (even_active, _) = collect("ws-even", ConnectorStatus::Active, 2).await;
    assert_eq!(even_active, ["c0", "c4", "c6"]);
    let (inactive, _) = collect("", ConnectorStatus::Inactive, 10).await;
    assert_eq!(inactive, ["c2"]);
    let (exact, pages) = collect("ws-odd", ConnectorStatus::StatusUnspecified, 3).await;
    assert_eq!(
        (exact.len(), pages),
        (3, 1),
        "a full last page has no next token"
    );
}

async fn update_replaces_only_masked_fields(db: Db) {
    let server = ControlPlaneHandle::start(db).await;
    let mut admin = server.admin().await;
    let created = admin
        .create_connector(create(meta_connector("ws-1", "Meta")))
        .await
        .expect("create")
        .into_inner();

    let mut changes = created.clone();
    changes.name = "Meta renamed".into();
    changes
        .settings
        .insert("test_event_code".into(), "TEST123".into());
    changes.mappings.clear();
    changes.secrets.clear();
    let updated = admin
        .update_connector(UpdateConnectorRequest {
            connector: Some(changes),
            update_mask: mask(&["name", "settings"]),
        })
        .await
        .expect("update")
        .into_inner();
    assert_eq!(updated.name, "Meta renamed");
    assert_eq!(updated.settings["test_event_code"], "TEST123");
    assert_eq!(
        updated.mappings, created.mappings,
        "mappings were not in the mask"
    );
    assert_eq!(
        updated.secret_names,
        ["access_token"],
        "secrets kept when not in the mask"
    );
    assert_eq!(updated.version, 2);
    assert_eq!(updated.status, ConnectorStatus::Active as i32);
    let seconds = |t: &Option<prost_types::Timestamp>| t.as_ref().map(|t| (t.seconds, t.nanos));
    assert!(seconds(&updated.update_time) >= seconds(&updated.create_time));

    let mut filter_cleared = updated.clone();
    filter_cleared.filter = None;
    let cleared = admin
        .update_connector(UpdateConnectorRequest {
            connector: Some(filter_cleared),
            update_mask: mask(&["filter", "mappings"]),
        })
        .await
        .expect("clear filter")
        .into_inner();
    assert_eq!(cleared.filter, None);
    assert_eq!(cleared.mappings, updated.mappings);
    assert_eq!(cleared.version, 3);

    let store = server.store().await;
    let record = store.get(&created.id).await.expect("stored");
    let key = control_plane::secrets::SecretBox::from_base64(e2e_tests::control_plane::SECRETS_KEY)
        .expect("key");
    assert_eq!(
        key.open(&created.id, &record.sealed_secrets)
            .expect("opens")["access_token"],
        META_TOKEN
    );
    store.close().await;
}
