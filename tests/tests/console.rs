//! The control plane's address as a browser uses it: the console's files
//! under a policy that lets the page load and call nothing else, the admin
//! services answering gRPC-Web through the same gate, and the statistics
//! reads relayed to the stats service with the caller's own scope.

use std::time::Duration;

use e2e_tests::control_plane::{ADMIN_TOKEN, ControlPlaneHandle, Db};
use e2e_tests::fixtures::webhook_connector;
use e2e_tests::grpc_web::{WebStatus, call};
use e2e_tests::partners::{FakePartner, Webhook};
use e2e_tests::platform::{Platform, event};
use e2e_tests::with_token;
use eventconnectors_proto::v1::stats_service_client::StatsServiceClient;
use eventconnectors_proto::v1::{
    Connector, CreateConnectorRequest, DeleteConnectorStatsRequest, DeleteConnectorStatsResponse,
    GetConnectorStatsRequest, GetConnectorStatsResponse, ListPartnersRequest, ListPartnersResponse,
    ListRecentFailuresRequest, ListRecentFailuresResponse, StatsPreset,
};
use tonic::Code;
use tonic_types::StatusExt;

const STATS: &str = "/eventconnectors.v1.StatsService/";
const CONNECTORS: &str = "/eventconnectors.v1.ConnectorService/";

fn last_7_days(connector_id: &str) -> GetConnectorStatsRequest {
    GetConnectorStatsRequest {
        connector_id: connector_id.to_owned(),
        preset: StatsPreset::Last7Days as i32,
        ..GetConnectorStatsRequest::default()
    }
}

fn refused<T: std::fmt::Debug>(result: Result<T, WebStatus>, code: Code, what: &str) -> WebStatus {
    let status = result.expect_err(what);
    assert_eq!(status.code, code, "{what}: {status:?}");
    status
}

#[tokio::test]
async fn the_console_is_served_under_a_policy_that_allows_nothing_else() {
    let server = ControlPlaneHandle::start(Db::Sqlite).await;
    let base = format!("http://{}", server.addr);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let get = |path: &str| client.get(format!("{base}{path}")).send();

    let root = get("/").await.expect("root");
    assert!(root.status().is_redirection(), "{root:?}");
    assert_eq!(root.headers()["location"], "/console/");

    let page = get("/console/").await.expect("page");
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let policy = headers["content-security-policy"].to_str().unwrap();
    for rule in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(policy.contains(rule), "{rule} in {policy}");
    }
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    let html = page.text().await.expect("html");
    assert!(
        html.contains(r#"<script type="module" src="app.js">"#),
        "{html}"
    );
    assert!(
        !html.contains("<script>"),
        "no inline script: the policy would block it"
    );

    for (file, kind) in [
        ("app.js", "text/javascript"),
        ("grpc.js", "text/javascript"),
        ("style.css", "text/css"),
    ] {
        let response = get(&format!("/console/{file}")).await.expect(file);
        assert_eq!(response.status(), 200, "{file}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind),
            "{file}"
        );
    }
    for missing in [
        "/console/nope.js",
        "/console/..%2F..%2Fetc%2Fpasswd",
        "/console/schema",
    ] {
        assert_eq!(
            get(missing).await.expect(missing).status(),
            404,
            "{missing}"
        );
    }

    let schema = get("/console/schema.json")
        .await
        .expect("schema")
        .text()
        .await
        .expect("text");
    let schema: serde_json::Value = serde_json::from_str(&schema).expect("json");
    let fields = schema["messages"]["eventconnectors.v1.GetConnectorStatsRequest"]
        .as_array()
        .expect("the stats request's fields");
    assert!(fields.iter().any(|f| f[0] == "time_zone" && f[1] == 5));
}

#[tokio::test]
async fn the_admin_api_answers_grpc_web_behind_the_same_gate() {
    let server = ControlPlaneHandle::start(Db::Sqlite).await;
    let base = format!("http://{}", server.addr);
    let partners: ListPartnersResponse = call(
        &base,
        &format!("{CONNECTORS}ListPartners"),
        ADMIN_TOKEN,
        &ListPartnersRequest {},
    )
    .await
    .expect("partners over gRPC-Web");
    assert!(partners.partners.iter().any(|p| p.id == "meta_capi"));

    refused(
        call::<_, ListPartnersResponse>(
            &base,
            &format!("{CONNECTORS}ListPartners"),
            "not-a-key",
            &ListPartnersRequest {},
        )
        .await,
        Code::Unauthenticated,
        "a stranger",
    );

    // A refusal carries its field violations, as the form shows them.
    let mut connector = webhook_connector("shop", "hook", "https://hooks.example/in");
    connector.settings.clear();
    let status = refused(
        call::<_, Connector>(
            &base,
            &format!("{CONNECTORS}CreateConnector"),
            ADMIN_TOKEN,
            &CreateConnectorRequest {
                connector: Some(connector),
                request_id: String::new(),
            },
        )
        .await,
        Code::InvalidArgument,
        "a webhook without its URL",
    );
    let violations = status
        .details
        .expect("details")
        .get_details_bad_request()
        .expect("a BadRequest")
        .field_violations;
    assert!(
        violations
            .iter()
            .any(|v| v.field == "connector.settings.url"),
        "{violations:?}"
    );
}

#[tokio::test]
async fn statistics_reads_are_relayed_with_the_callers_own_scope() {
    let partner = FakePartner::start(&Webhook).await;
    let mut platform = Platform::start(&[]).await;
    let mine = platform
        .create(webhook_connector("ws-a", "mine", &partner.url()))
        .await;
    let theirs = platform
        .create(webhook_connector("ws-b", "theirs", &partner.url()))
        .await;
    platform
        .ingest_all(&[
            event("e1", "ws-a", "Purchase", serde_json::json!({})),
            event("e2", "ws-a", "Purchase", serde_json::json!({})),
        ])
        .await;
    let direct = platform
        .wait_for_outcomes(&mine.id, 2, Duration::from_secs(10))
        .await;
    let key = platform.control_plane.api_key("workspace:ws-a:admin").await;
    let base = format!("http://{}", platform.control_plane.addr);

    // The stats service learns of a new key through its directory feed,
    // a few milliseconds after the control plane.
    let started = std::time::Instant::now();
    let relayed: GetConnectorStatsResponse = loop {
        match call(
            &base,
            &format!("{STATS}GetConnectorStats"),
            &key,
            &last_7_days(&mine.id),
        )
        .await
        {
            Err(status)
                if status.code == Code::Unauthenticated
                    && started.elapsed() < Duration::from_secs(5) =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            answer => break answer.expect("own statistics through the control plane"),
        }
    };
    assert_eq!(relayed.totals, direct.totals);
    assert_eq!(relayed.totals.expect("totals").delivered, 2);
    let failures: ListRecentFailuresResponse = call(
        &base,
        &format!("{STATS}ListRecentFailures"),
        &key,
        &ListRecentFailuresRequest {
            connector_id: mine.id.clone(),
            page_size: 10,
            page_token: String::new(),
        },
    )
    .await
    .expect("own recent failures");
    assert!(failures.failures.is_empty());

    // The stats service itself refuses another workspace's connector.
    refused(
        call::<_, GetConnectorStatsResponse>(
            &base,
            &format!("{STATS}GetConnectorStats"),
            &key,
            &last_7_days(&theirs.id),
        )
        .await,
        Code::PermissionDenied,
        "another workspace's statistics",
    );
    // A stranger is stopped here, before anything is relayed.
    refused(
        call::<_, GetConnectorStatsResponse>(
            &base,
            &format!("{STATS}GetConnectorStats"),
            "not-a-key",
            &last_7_days(&mine.id),
        )
        .await,
        Code::Unauthenticated,
        "a stranger",
    );
    // Only the reads are relayed, whoever asks.
    let other = refused(
        call::<_, DeleteConnectorStatsResponse>(
            &base,
            &format!("{STATS}DeleteConnectorStats"),
            &key,
            &DeleteConnectorStatsRequest {
                connector_id: mine.id.clone(),
            },
        )
        .await,
        Code::Unimplemented,
        "an erase through the relay",
    );
    assert!(other.message.contains("GetConnectorStats"), "{other:?}");

    // A gRPC client (grpcurl) reaches the same relay over HTTP/2.
    let native = StatsServiceClient::new(platform.control_plane.channel().await)
        .get_connector_stats(with_token(last_7_days(&mine.id), &key))
        .await
        .expect("relayed over HTTP/2")
        .into_inner();
    assert_eq!(native.totals, direct.totals);
}

#[tokio::test]
async fn without_a_stats_url_the_relay_says_what_is_missing() {
    let server = ControlPlaneHandle::start(Db::Sqlite).await;
    let status = refused(
        call::<_, GetConnectorStatsResponse>(
            &format!("http://{}", server.addr),
            &format!("{STATS}GetConnectorStats"),
            ADMIN_TOKEN,
            &last_7_days("0193f0a0-0000-7000-8000-000000000000"),
        )
        .await,
        Code::Unavailable,
        "no stats service",
    );
    assert!(status.message.contains("STATS_URL"), "{status:?}");
}
