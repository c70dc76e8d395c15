//! Every secret stays where it belongs: the whole platform runs with known
//! secret values (service tokens, API keys, the sealing key, a database
//! password, partner credentials, among them one a hostile partner echoes
//! back), and every log line at debug level, every admin response, every
//! error message and every metric label is searched for them. The only
//! place a secret may appear is the one answer meant to show it:
//! CreateApiKey's.
//!
//! Its own test binary: the log capture and the metrics recorder are
//! process-wide.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use e2e_tests::control_plane::{ADMIN_TOKEN, Db, NODE_TOKEN, Options, SECRETS_KEY};
use e2e_tests::fixtures::{create, webhook_connector};
use e2e_tests::node::INGEST_TOKEN;
use e2e_tests::partners::{FakePartner, MetaCapi, Reply, Webhook};
use e2e_tests::platform::{Platform, event};
use e2e_tests::stats::{DIRECTORY_TOKEN, OUTCOMES_TOKEN, STATS_ADMIN_TOKEN};
use e2e_tests::with_token;
use eventconnectors_proto::v1::api_key_service_client::ApiKeyServiceClient;
use eventconnectors_proto::v1::config_service_client::ConfigServiceClient;
use eventconnectors_proto::v1::connector_service_client::ConnectorServiceClient;
use eventconnectors_proto::v1::preview_transformation_request::Target;
use eventconnectors_proto::v1::stats_service_client::StatsServiceClient;
use eventconnectors_proto::v1::{
    Connector, CreateApiKeyRequest, DataType, FieldMapping, GetConnectorRequest,
    GetConnectorStatsRequest, IngestRequest, ListApiKeysRequest, ListConnectorsRequest,
    ListNodesRequest, ListPartnersRequest, ListRecentFailuresRequest, Outcome,
    PreviewTransformationRequest, RevokeApiKeyRequest, StatsPreset, TestConnectorRequest,
    UpdateConnectorRequest, test_connector_request,
};
use tonic::Code;

const DATABASE_PASSWORD: &str = "db-passw0rd-9f1c7e";
const META_ACCESS_TOKEN: &str = "EAAB-scan-meta-token-5d2a";
const SIGNING_SECRET: &str = "whsec_c2Nhbi1zaWduaW5nLXNlY3JldC0wMTIzNDU2Nzg5YWI=";
const AUTHORIZATION: &str = "Bearer partner-auth-7c41e0";
const HEADER_SECRET: &str = "hdr-secret-0b9e33";

/// Everything written to the log, at debug level, by every crate.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn install() -> Self {
        let captured = Self::default();
        let writer = captured.clone();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init()
            .expect("the first subscriber of this process");
        captured
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log")).into_owned()
    }
}

/// Collects what the platform shows, and scans it.
#[derive(Default)]
struct Shown(Vec<(String, String)>);

impl Shown {
    fn add(&mut self, what: &str, text: impl std::fmt::Debug) {
        self.0.push((what.to_owned(), format!("{text:?}")));
    }

    fn status(&mut self, what: &str, status: &tonic::Status) {
        // The message and every detail (BadRequest violations included).
        self.add(what, (status.code(), status.message(), status.details()));
    }
}

e2e_tests::each_backend!(
    [postgres => super::Db::Postgres, sqlite => super::Db::Sqlite],
    [no_secret_reaches_a_log_a_response_an_error_or_a_metric]
);

async fn no_secret_reaches_a_log_a_response_an_error_or_a_metric(db: Db) {
    let log = Captured::install();
    let metrics_address = e2e_tests::metrics::free_address();
    let histograms: Vec<(&str, &[f64])> = data_plane::metrics::HISTOGRAMS
        .iter()
        .chain(stats_service::metrics::HISTOGRAMS)
        .copied()
        .collect();
    server_kit::metrics::install(metrics_address, &histograms).expect("metrics endpoint");

    let meta = FakePartner::start(&MetaCapi).await;
    let hook = FakePartner::start(&Webhook).await;
    hook.verify_signatures(SIGNING_SECRET);
    // A hostile partner: Meta's error echoes the token it was sent.
    meta.set_default(Reply::Error {
        status: 400,
        code: "190".into(),
        message: format!("Invalid OAuth access token: {META_ACCESS_TOKEN}"),
    });
    hook.set_default(Reply::Status {
        status: 401,
        retry_after: None,
    });
    let meta_flag = meta.base_url_flag();
    let platform = Platform::launch(
        db,
        Options {
            database_password: Some(DATABASE_PASSWORD.to_owned()),
            partner_base_urls: vec![("meta_capi".to_owned(), meta.url())],
            ..Options::default()
        },
        &[meta_flag.as_str()],
    )
    .await;
    let channel = platform.control_plane.channel().await;
    let mut connectors = ConnectorServiceClient::new(channel.clone());
    let mut keys = ApiKeyServiceClient::new(channel.clone());
    let mut shown = Shown::default();

    // API keys: the creation answer is the one place a key is shown.
    let mut created_keys = Vec::new();
    for scope in ["workspace:scan:admin", "workspace:scan:ingest"] {
        let created = keys
            .create_api_key(with_token(
                CreateApiKeyRequest {
                    scope: scope.into(),
                    description: "scan".into(),
                },
                ADMIN_TOKEN,
            ))
            .await
            .expect("create key")
            .into_inner();
        shown.add("CreateApiKey without its secret", &created.api_key);
        created_keys.push(created.secret);
    }
    let (admin_key, ingest_key) = (created_keys[0].clone(), created_keys[1].clone());

    let meta_connector = connectors
        .create_connector(with_token(
            create(Connector {
                workspace_id: "scan".into(),
                name: "meta".into(),
                partner: "meta_capi".into(),
                settings: BTreeMap::from([("pixel_id".into(), "123456789012345".into())]),
                secrets: BTreeMap::from([("access_token".into(), META_ACCESS_TOKEN.into())]),
                mappings: vec![FieldMapping {
                    source: "properties.total".into(),
                    target: "custom_data.value".into(),
                    r#type: DataType::Number as i32,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            &admin_key,
        ))
        .await
        .expect("create meta")
        .into_inner();
    shown.add("CreateConnector", &meta_connector);
    let mut webhook = webhook_connector("scan", "hook", &hook.url());
    webhook.secrets = BTreeMap::from([
        ("signing_secret".into(), SIGNING_SECRET.into()),
        ("authorization".into(), AUTHORIZATION.into()),
        ("header.X-Api-Key".into(), HEADER_SECRET.into()),
    ]);
    let webhook = connectors
        .create_connector(with_token(create(webhook), &admin_key))
        .await
        .expect("create webhook")
        .into_inner();
    shown.add("CreateConnector", &webhook);
    for id in [&meta_connector.id, &webhook.id] {
        platform
            .node()
            .wait_for_lane(id, true, Duration::from_secs(5))
            .await;
    }

    // Traffic: delivered to the webhook's fake (which checks the
    // signature), refused by both partners.
    platform
        .node()
        .wait_for("the ingest key", Duration::from_secs(5), |s| {
            s.keys().len() == 2
        })
        .await;
    let events: Vec<String> = (0..4)
        .map(|i| {
            event(
                &format!("scan-{i}"),
                "scan",
                "Purchase",
                serde_json::json!({"total": 9.5}),
            )
        })
        .collect();
    let response = platform
        .node()
        .ingest_client()
        .await
        .ingest(with_token(
            IngestRequest {
                events,
                sequence: 1,
            },
            &ingest_key,
        ))
        .await
        .expect("ingest")
        .into_inner();
    assert_eq!(response.accepted, 4);
    meta.wait_for_requests(1, Duration::from_secs(5)).await;
    hook.wait_for_requests(4, Duration::from_secs(5)).await;
    // The secrets did reach the partners: what is scanned for is real.
    assert_eq!(meta.requests()[0].query["access_token"], META_ACCESS_TOKEN);
    assert_eq!(hook.requests()[0].headers["x-api-key"], HEADER_SECRET);
    assert_eq!(hook.requests()[0].headers["authorization"], AUTHORIZATION);

    let mut stats_client = StatsServiceClient::new(platform.stats.channel().await);
    for id in [&meta_connector.id, &webhook.id] {
        platform
            .wait_for_outcomes(id, 4, Duration::from_secs(10))
            .await;
        let stats = stats_client
            .get_connector_stats(with_token(
                GetConnectorStatsRequest {
                    connector_id: id.clone(),
                    preset: StatsPreset::Last7Days as i32,
                    ..Default::default()
                },
                &admin_key,
            ))
            .await
            .expect("stats")
            .into_inner();
        assert!(!stats.connector_errors.is_empty(), "{stats:?}");
        shown.add("GetConnectorStats", &stats);
        let failures = stats_client
            .list_recent_failures(with_token(
                ListRecentFailuresRequest {
                    connector_id: id.clone(),
                    page_size: 100,
                    ..Default::default()
                },
                &admin_key,
            ))
            .await
            .expect("recent failures")
            .into_inner();
        assert!(!failures.failures.is_empty(), "{failures:?}");
        shown.add("ListRecentFailures", &failures);
    }

    // Everything an admin reads.
    for token in [ADMIN_TOKEN, admin_key.as_str()] {
        shown.add(
            "ListConnectors",
            connectors
                .list_connectors(with_token(
                    ListConnectorsRequest {
                        workspace_id: "scan".into(),
                        ..Default::default()
                    },
                    token,
                ))
                .await
                .expect("list"),
        );
        shown.add(
            "GetConnector",
            connectors
                .get_connector(with_token(
                    GetConnectorRequest {
                        id: webhook.id.clone(),
                    },
                    token,
                ))
                .await
                .expect("get"),
        );
        shown.add(
            "ListApiKeys",
            keys.list_api_keys(with_token(ListApiKeysRequest::default(), token))
                .await
                .expect("keys"),
        );
    }
    // What each connector would send: the real request, secrets hidden.
    for id in [&meta_connector.id, &webhook.id] {
        let preview = connectors
            .preview_transformation(with_token(
                PreviewTransformationRequest {
                    target: Some(Target::ConnectorId(id.clone())),
                    event_json: r#"{"id":"scan-preview","workspace_id":"scan","type":"Purchase","properties":{"total":"1"}}"#.to_owned(),
                },
                ADMIN_TOKEN,
            ))
            .await
            .expect("preview")
            .into_inner();
        shown.add("PreviewTransformation", &preview);
        // A test reaches the hostile partners themselves: Meta echoes the
        // token, the webhook refuses.
        let tested = connectors
            .test_connector(with_token(
                TestConnectorRequest {
                    target: Some(test_connector_request::Target::ConnectorId(id.clone())),
                    event_json: String::new(),
                    test_event_code: "SCAN1".to_owned(),
                },
                ADMIN_TOKEN,
            ))
            .await
            .expect("test")
            .into_inner();
        assert_eq!(tested.outcome(), Outcome::Failed, "{tested:?}");
        shown.add("TestConnector", &tested);
    }
    shown.add(
        "ListPartners",
        connectors
            .list_partners(with_token(ListPartnersRequest {}, ADMIN_TOKEN))
            .await
            .expect("partners"),
    );
    shown.add(
        "ListNodes",
        ConfigServiceClient::new(channel.clone())
            .list_nodes(with_token(ListNodesRequest {}, ADMIN_TOKEN))
            .await
            .expect("nodes"),
    );

    // Errors, with secrets where they do not belong.
    let misplaced = connectors
        .create_connector(with_token(
            create(Connector {
                settings: BTreeMap::from([
                    ("url".into(), hook.url()),
                    ("signing_secret".into(), SIGNING_SECRET.into()),
                    ("header.X-Other".into(), format!("{HEADER_SECRET}\r\n")),
                ]),
                ..webhook_connector("scan", "misplaced", &hook.url())
            }),
            &admin_key,
        ))
        .await
        .expect_err("a secret in settings is refused");
    assert_eq!(misplaced.code(), Code::InvalidArgument);
    shown.status("a secret in settings", &misplaced);
    let bad_header = connectors
        .update_connector(with_token(
            UpdateConnectorRequest {
                connector: Some(Connector {
                    secrets: BTreeMap::from([(
                        "header.Bad Name".into(),
                        format!("{AUTHORIZATION}\n{META_ACCESS_TOKEN}"),
                    )]),
                    ..webhook.clone()
                }),
                update_mask: e2e_tests::fixtures::mask(&["secrets"]),
            },
            &admin_key,
        ))
        .await
        .expect_err("a bad secret header");
    shown.status("a bad secret header", &bad_header);
    for presented in [
        format!("{ADMIN_TOKEN}x"),
        format!("x{NODE_TOKEN}"),
        SECRETS_KEY.to_owned(),
    ] {
        let status = connectors
            .list_connectors(with_token(ListConnectorsRequest::default(), &presented))
            .await
            .expect_err("refused");
        shown.status("a wrong credential", &status);
    }
    let revoked_id = keys
        .list_api_keys(with_token(ListApiKeysRequest::default(), ADMIN_TOKEN))
        .await
        .expect("keys")
        .into_inner()
        .api_keys
        .into_iter()
        .find(|k| k.scope.ends_with(":ingest"))
        .expect("the ingest key")
        .id;
    keys.revoke_api_key(with_token(
        RevokeApiKeyRequest { id: revoked_id },
        &admin_key,
    ))
    .await
    .expect("revoke");
    let refused = connectors
        .list_connectors(with_token(ListConnectorsRequest::default(), &ingest_key))
        .await
        .expect_err("revoked");
    shown.status("a revoked key", &refused);

    // Metric labels (and values) of every service.
    let page = e2e_tests::metrics::scrape(metrics_address).await;
    assert!(
        page.contains("eventconnectors_outcomes_total"),
        "the page has the node's series:\n{page}"
    );
    shown.add("/metrics", &page);

    drop(stats_client);
    drop(platform);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let logs = log.text();
    assert!(
        logs.contains("connector created") && logs.contains("API key created"),
        "the capture holds the services' logs"
    );
    if db == Db::Postgres {
        assert!(
            logs.contains(":***@"),
            "the database URL is logged, its password masked"
        );
    }
    let secrets = [
        ("admin token", ADMIN_TOKEN),
        ("node token", NODE_TOKEN),
        ("directory token", DIRECTORY_TOKEN),
        ("outcomes token", OUTCOMES_TOKEN),
        ("ingest token", INGEST_TOKEN),
        ("stats admin token", STATS_ADMIN_TOKEN),
        ("sealing key", SECRETS_KEY),
        ("database password", DATABASE_PASSWORD),
        ("Meta access token", META_ACCESS_TOKEN),
        ("webhook signing secret", SIGNING_SECRET),
        ("webhook authorization", AUTHORIZATION),
        ("secret header", HEADER_SECRET),
        ("admin API key", &admin_key),
        ("ingest API key", &ingest_key),
    ];
    let mut hits = Vec::new();
    for (name, secret) in secrets {
        for (line_number, line) in logs.lines().enumerate() {
            if line.contains(secret) {
                hits.push(format!("{name} in log line {line_number}: {line}"));
            }
        }
        for (what, text) in &shown.0 {
            if text.contains(secret) {
                hits.push(format!("{name} in {what}: {text}"));
            }
        }
    }
    assert!(
        hits.is_empty(),
        "{} secret(s) shown:\n{}",
        hits.len(),
        hits.join("\n")
    );
}
