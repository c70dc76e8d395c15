//! Delivery end to end: real gRPC ingest into a node that follows a real
//! control plane, fake partners on loopback speaking each partner's format
//! and errors, and outcomes read back from a real stats service.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use data_plane::delivery::breaker::State;
use e2e_tests::fixtures::webhook_connector;
use e2e_tests::node::INGEST_TOKEN;
use e2e_tests::partners::{FakePartner, Ga4, MetaCapi, Reply, TikTok, Webhook};
use e2e_tests::platform::{Platform, event, total};
use e2e_tests::stats::{Backend, RedisPrefix, StatsHandle};
use e2e_tests::with_token;
use eventconnectors_proto::v1::stats_service_client::StatsServiceClient;
use eventconnectors_proto::v1::{
    ConditionOperator, Connector, ConnectorErrorGroup, DataType, ErrorCategory, EventFilter,
    FieldMapping, GetConnectorStatsRequest, IngestRequest, Outcome, OutcomeTotals,
    PropertyCondition, RejectReason, StatsPreset,
};
use serde_json::{Value, json};
use tonic::Code;

const SECOND: Duration = Duration::from_secs(1);
const SIGNING_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn webhook(workspace: &str, url: &str) -> Connector {
    webhook_connector(workspace, &format!("hook {url}"), url)
}

fn signed_webhook(workspace: &str, url: &str) -> Connector {
    Connector {
        secrets: BTreeMap::from([("signing_secret".to_owned(), SIGNING_SECRET.to_owned())]),
        ..webhook(workspace, url)
    }
}

fn meta(workspace: &str) -> Connector {
    Connector {
        workspace_id: workspace.to_owned(),
        name: "meta".to_owned(),
        partner: "meta_capi".to_owned(),
        settings: BTreeMap::from([("pixel_id".to_owned(), "123456789012345".to_owned())]),
        secrets: BTreeMap::from([("access_token".to_owned(), "EAAB-token".to_owned())]),
        mappings: vec![mapping(
            "properties.total",
            "custom_data.value",
            DataType::Number,
        )],
        ..Default::default()
    }
}

fn tiktok(workspace: &str) -> Connector {
    Connector {
        workspace_id: workspace.to_owned(),
        name: "tiktok".to_owned(),
        partner: "tiktok".to_owned(),
        settings: BTreeMap::from([("pixel_code".to_owned(), "CPIX123".to_owned())]),
        secrets: BTreeMap::from([("access_token".to_owned(), "tt-token".to_owned())]),
        ..Default::default()
    }
}

fn ga4(workspace: &str) -> Connector {
    Connector {
        workspace_id: workspace.to_owned(),
        name: "ga4".to_owned(),
        partner: "ga4".to_owned(),
        settings: BTreeMap::from([("measurement_id".to_owned(), "G-ABC123".to_owned())]),
        secrets: BTreeMap::from([("api_secret".to_owned(), "ga-secret".to_owned())]),
        ..Default::default()
    }
}

fn mapping(source: &str, target: &str, data_type: DataType) -> FieldMapping {
    FieldMapping {
        source: source.to_owned(),
        target: target.to_owned(),
        r#type: data_type as i32,
        ..Default::default()
    }
}

fn purchase(id: &str, workspace: &str) -> String {
    event(
        id,
        workspace,
        "Purchase",
        json!({"total": "19.99", "currency": "EUR", "country": "FR"}),
    )
}

fn totals(stats: &eventconnectors_proto::v1::GetConnectorStatsResponse) -> OutcomeTotals {
    stats.totals.unwrap_or_default()
}

fn errors(
    stats: &eventconnectors_proto::v1::GetConnectorStatsResponse,
) -> Vec<(ErrorCategory, String, u64)> {
    stats
        .connector_errors
        .iter()
        .map(|group: &ConnectorErrorGroup| {
            (
                ErrorCategory::try_from(group.category).expect("category"),
                group.partner_code.clone(),
                group.count,
            )
        })
        .collect()
}

/// Flags for fast failure tests: short timeout, no breaker interference.
const QUICK: &[&str] = &[
    "--delivery-timeout",
    "300ms",
    "--breaker-min-requests",
    "1000",
];

#[tokio::test]
async fn a_webhook_gets_the_raw_event_unchanged_and_signed() {
    let partner = FakePartner::start(&Webhook).await;
    partner.verify_signatures(SIGNING_SECRET);
    let mut platform = Platform::start(&[]).await;
    let hook = platform
        .create(signed_webhook("acme", &partner.url()))
        .await;
    let raw =
        r#"{"id":"evt-1","workspace_id":"acme","type":"Signup",  "properties":{"plan":"pro"}}"#;
    platform.ingest_all(&[raw.to_owned()]).await;
    partner.wait_for_requests(1, 5 * SECOND).await;
    let request = &partner.requests()[0];
    assert_eq!(request.reply_status, 204, "signature verified by the fake");
    assert_eq!(request.headers["webhook-id"], "evt-1");
    assert_eq!(
        request.body,
        serde_json::from_str::<Value>(raw).expect("json")
    );
    let stats = platform.wait_for_outcomes(&hook.id, 1, 5 * SECOND).await;
    assert_eq!(totals(&stats).delivered, 1);
}

#[tokio::test]
async fn each_partner_gets_its_own_format_and_every_event_is_delivered_once() {
    let meta_partner = FakePartner::start(&MetaCapi).await;
    let tiktok_partner = FakePartner::start(&TikTok).await;
    let ga4_partner = FakePartner::start(&Ga4).await;
    let (meta_url, tiktok_url, ga4_url) = (
        meta_partner.base_url(),
        tiktok_partner.base_url(),
        ga4_partner.base_url(),
    );
    let mut platform = Platform::start(&[
        "--meta-base-url",
        &meta_url,
        "--tiktok-base-url",
        &tiktok_url,
        "--ga4-base-url",
        &ga4_url,
        "--linger",
        "20ms",
    ])
    .await;
    let meta = platform.create(meta("shop")).await;
    let tiktok = platform.create(tiktok("shop")).await;
    let ga4 = platform.create(ga4("shop")).await;
    let events: Vec<String> = (0..60)
        .map(|i| purchase(&format!("p-{i}"), "shop"))
        .collect();
    platform.ingest_all(&events).await;

    for (connector, count) in [(&meta.id, 60), (&tiktok.id, 60), (&ga4.id, 60)] {
        let stats = platform
            .wait_for_outcomes(connector, count, 5 * SECOND)
            .await;
        assert_eq!(totals(&stats).delivered, count, "{connector}: {stats:?}");
    }
    assert_eq!(meta_partner.event_count(), 60);
    assert_eq!(tiktok_partner.event_count(), 60);
    assert_eq!(ga4_partner.event_count(), 60);

    let meta_request = &meta_partner.requests()[0];
    assert_eq!(meta_request.path, "/v21.0/123456789012345/events");
    assert_eq!(meta_request.query["access_token"], "EAAB-token");
    let first = &meta_request.body["data"][0];
    assert_eq!(first["event_name"], "Purchase");
    assert_eq!(first["action_source"], "website");
    assert_eq!(first["custom_data"]["value"], 19.99);
    // Meta's own example digest of "john_smith@gmail.com".
    assert_eq!(
        first["user_data"]["em"],
        "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"
    );
    assert!(
        tiktok_partner
            .requests()
            .iter()
            .all(|r| r.events <= 50 && r.headers["access-token"] == "tt-token")
    );
    assert!(ga4_partner.requests().iter().all(|r| r.events <= 25
        && r.body["client_id"] == "555.777"
        && r.query["measurement_id"] == "G-ABC123"));
}

#[tokio::test]
async fn events_reach_only_their_workspace_and_matching_filters() {
    let partner_a = FakePartner::start(&Webhook).await;
    let partner_b = FakePartner::start(&Webhook).await;
    let mut platform = Platform::start(&[]).await;
    let a = platform
        .create(webhook("workspace-a", &partner_a.url()))
        .await;
    let filtered = platform
        .create(Connector {
            filter: Some(EventFilter {
                event_types: vec!["Purchase".to_owned()],
                condition: Some(PropertyCondition {
                    path: "properties.country".to_owned(),
                    operator: ConditionOperator::Equals as i32,
                    value: "FR".to_owned(),
                }),
            }),
            ..webhook("workspace-b", &partner_b.url())
        })
        .await;
    platform
        .ingest_all(&[
            purchase("a-1", "workspace-a"),
            purchase("b-fr", "workspace-b"),
            event("b-de", "workspace-b", "Purchase", json!({"country": "DE"})),
            event(
                "b-view",
                "workspace-b",
                "PageView",
                json!({"country": "FR"}),
            ),
            purchase("nobody", "workspace-c"),
        ])
        .await;
    platform.wait_for_outcomes(&a.id, 1, 5 * SECOND).await;
    let stats = platform
        .wait_for_outcomes(&filtered.id, 1, 5 * SECOND)
        .await;
    // Every accepted event has its outcome: nothing more will be sent.
    platform.node().wait_idle(5 * SECOND).await;
    let ids = |partner: &FakePartner| -> Vec<String> {
        partner
            .requests()
            .iter()
            .map(|r| r.body["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(ids(&partner_a), ["a-1"]);
    assert_eq!(ids(&partner_b), ["b-fr"]);
    assert_eq!(total(stats.totals.as_ref()), 1);
    assert_eq!(total(platform.stats_of(&a.id).await.totals.as_ref()), 1);
}

#[tokio::test]
async fn a_permanent_500_is_four_attempts_then_failed() {
    let partner = FakePartner::start(&Webhook).await;
    partner.set_default(Reply::Status {
        status: 500,
        retry_after: None,
    });
    let mut platform = Platform::start(QUICK).await;
    let hook = platform.create(webhook("w", &partner.url())).await;
    platform.ingest_all(&[purchase("e1", "w")]).await;
    let stats = platform.wait_for_outcomes(&hook.id, 1, 5 * SECOND).await;
    assert_eq!(partner.request_count(), 4, "1 attempt + 3 retries");
    assert_eq!(totals(&stats).failed, 1);
    assert_eq!(
        errors(&stats),
        [(ErrorCategory::PartnerError, "500".to_owned(), 1)]
    );
}

#[tokio::test]
async fn a_500_then_success_on_the_second_retry_is_delivered() {
    let partner = FakePartner::start(&Webhook).await;
    let status = |status| Reply::Status {
        status,
        retry_after: None,
    };
    partner.script([status(500), status(503)]);
    let mut platform = Platform::start(QUICK).await;
    let hook = platform.create(webhook("w", &partner.url())).await;
    platform.ingest_all(&[purchase("e1", "w")]).await;
    let stats = platform.wait_for_outcomes(&hook.id, 1, 5 * SECOND).await;
    assert_eq!(partner.request_count(), 3);
    assert_eq!((totals(&stats).delivered, totals(&stats).failed), (1, 0));
}

#[tokio::test]
async fn a_429_is_retried_no_sooner_than_its_retry_after() {
    let partner = FakePartner::start(&Webhook).await;
    partner.script([Reply::Status {
        status: 429,
        retry_after: Some(1),
    }]);
    let mut platform = Platform::start(QUICK).await;
    let hook = platform.create(webhook("w", &partner.url())).await;
    platform.ingest_all(&[purchase("e1", "w")]).await;
    let stats = platform.wait_for_outcomes(&hook.id, 1, 5 * SECOND).await;
    assert_eq!(totals(&stats).delivered, 1);
    let requests = partner.requests();
    assert_eq!(requests.len(), 2);
    let waited = requests[1].at.duration_since(requests[0].at);
    assert!(waited >= SECOND, "retried after {waited:?}");
}

#[tokio::test]
async fn a_partner_slower_than_the_timeout_fails_as_timeout_after_four_attempts() {
    let partner = FakePartner::start(&Webhook).await;
    partner.set_default(Reply::Delay(SECOND, Box::new(Reply::Accept)));
    let mut platform = Platform::start(QUICK).await;
    let hook = platform.create(webhook("w", &partner.url())).await;
    platform.ingest_all(&[purchase("e1", "w")]).await;
    let stats = platform.wait_for_outcomes(&hook.id, 1, 10 * SECOND).await;
    assert_eq!(errors(&stats), [(ErrorCategory::Timeout, String::new(), 1)]);
    assert_eq!(partner.request_count(), 4);
    assert!(
        stats.connector_errors[0].sample_message.contains("300ms"),
        "{:?}",
        stats.connector_errors
    );
}

#[tokio::test]
async fn a_refused_connection_is_resource_access() {
    let partner = FakePartner::start(&Webhook).await;
    let url = partner.url();
    partner.stop().await;
    let mut platform = Platform::start(QUICK).await;
    let hook = platform.create(webhook("w", &url)).await;
    platform.ingest_all(&[purchase("e1", "w")]).await;
    let stats = platform.wait_for_outcomes(&hook.id, 1, 5 * SECOND).await;
    assert_eq!(
        errors(&stats),
        [(ErrorCategory::ResourceAccess, String::new(), 1)]
    );
}

#[tokio::test]
async fn a_401_fails_at_once_as_invalid_credentials() {
    let partner = FakePartner::start(&Webhook).await;
    partner.set_default(Reply::Status {
        status: 401,
        retry_after: None,
    });
    let mut platform = Platform::start(QUICK).await;
    let hook = platform.create(webhook("w", &partner.url())).await;
    platform.ingest_all(&[purchase("e1", "w")]).await;
    let stats = platform.wait_for_outcomes(&hook.id, 1, 5 * SECOND).await;
    assert_eq!(
        errors(&stats),
        [(ErrorCategory::InvalidCredentials, "401".to_owned(), 1)]
    );
    assert_eq!(partner.request_count(), 1, "not retried");
}

#[tokio::test]
async fn meta_error_190_is_invalid_credentials_and_a_short_events_received_fails_the_rest() {
    let partner = FakePartner::start(&MetaCapi).await;
    partner.script([
        Reply::Error {
            status: 400,
            code: "190".to_owned(),
            message: "Error validating access token: Session has expired".to_owned(),
        },
        Reply::Partial { accepted: 3 },
    ]);
    let base = partner.base_url();
    let mut platform = Platform::start(&["--meta-base-url", &base, "--linger", "50ms"]).await;
    let connector = platform.create(meta("shop")).await;
    platform.ingest_all(&[purchase("m-0", "shop")]).await;
    platform
        .wait_for_outcomes(&connector.id, 1, 5 * SECOND)
        .await;
    let batch: Vec<String> = (1..=5)
        .map(|i| purchase(&format!("m-{i}"), "shop"))
        .collect();
    platform.ingest_all(&batch).await;
    let stats = platform
        .wait_for_outcomes(&connector.id, 6, 5 * SECOND)
        .await;
    assert_eq!(partner.request_count(), 2, "neither is retried");
    assert_eq!((totals(&stats).delivered, totals(&stats).failed), (3, 3));
    let mut groups = errors(&stats);
    groups.sort();
    assert_eq!(
        groups,
        [
            (
                ErrorCategory::PartnerError,
                "200/events_received".to_owned(),
                2
            ),
            (ErrorCategory::InvalidCredentials, "400/190".to_owned(), 1),
        ]
    );
    // Each failed event is listed, newest first, with what the partner said.
    let failures = platform.recent_failures(&connector.id).await;
    let listed: Vec<(&str, ErrorCategory, &str, u32)> = failures
        .iter()
        .map(|f| {
            (
                f.event_id.as_str(),
                f.category(),
                f.partner_code.as_str(),
                f.attempts,
            )
        })
        .collect();
    // The short events_received fails two events without naming them:
    // counted above, not listed.
    assert_eq!(
        listed,
        [("m-0", ErrorCategory::InvalidCredentials, "400/190", 1)]
    );
    assert!(
        failures[0].message.contains("Session has expired"),
        "{:?}",
        failures[0]
    );
    assert!(failures.iter().all(|f| f.outcome() == Outcome::Failed));
}

#[tokio::test]
async fn a_tiktok_error_inside_a_200_is_a_partner_error() {
    let partner = FakePartner::start(&TikTok).await;
    partner.set_default(Reply::Error {
        status: 200,
        code: "40002".to_owned(),
        message: "Invalid value for event_source_id".to_owned(),
    });
    let base = partner.base_url();
    let mut platform = Platform::start(&["--tiktok-base-url", &base]).await;
    let connector = platform.create(tiktok("shop")).await;
    platform.ingest_all(&[purchase("t-1", "shop")]).await;
    let stats = platform
        .wait_for_outcomes(&connector.id, 1, 5 * SECOND)
        .await;
    assert_eq!(
        errors(&stats),
        [(ErrorCategory::PartnerError, "200/40002".to_owned(), 1)]
    );
    assert_eq!(
        stats.connector_errors[0].sample_message,
        "Invalid value for event_source_id"
    );
}

#[tokio::test]
async fn the_breaker_opens_on_errors_then_a_probe_closes_it() {
    let partner = FakePartner::start(&Webhook).await;
    partner.set_default(Reply::Status {
        status: 503,
        retry_after: None,
    });
    let mut platform = Platform::start(&[
        "--delivery-retries",
        "0",
        "--breaker-min-requests",
        "4",
        "--breaker-open-for",
        "500ms",
        "--connector-concurrency",
        "1",
    ])
    .await;
    let hook = platform.create(webhook("w", &partner.url())).await;
    let burst = |from: usize| -> Vec<String> {
        (from..from + 4)
            .map(|i| purchase(&format!("e{i}"), "w"))
            .collect()
    };
    platform.ingest_all(&burst(0)).await;
    platform.wait_for_outcomes(&hook.id, 4, 5 * SECOND).await;
    assert_eq!(partner.request_count(), 4);

    platform.ingest_all(&burst(4)).await;
    let stats = platform.wait_for_outcomes(&hook.id, 8, 5 * SECOND).await;
    assert_eq!(partner.request_count(), 4, "an open breaker sends nothing");
    let mut groups = errors(&stats);
    groups.sort();
    assert_eq!(
        groups,
        [
            (ErrorCategory::PartnerError, "503".to_owned(), 4),
            (ErrorCategory::CircuitBreaker, String::new(), 4),
        ]
    );

    partner.set_default(Reply::Accept);
    let Some(State::Open { until }) = platform.node().breaker(&hook.id) else {
        panic!("the breaker is open");
    };
    // Until then the breaker lets nothing through; from then, a probe.
    tokio::time::sleep_until(until.into()).await;
    platform.ingest_all(&burst(8)).await;
    let stats = platform.wait_for_outcomes(&hook.id, 12, 5 * SECOND).await;
    assert_eq!(totals(&stats).delivered, 4, "the probe closed the breaker");
    assert_eq!(partner.request_count(), 8);
}

#[tokio::test]
async fn deactivating_drops_queued_events_at_once_and_counts_them() {
    let partner = FakePartner::start(&Webhook).await;
    partner.set_default(Reply::Delay(SECOND, Box::new(Reply::Accept)));
    let mut platform = Platform::start(&["--connector-concurrency", "1"]).await;
    let hook = platform.create(webhook("w", &partner.url())).await;
    let events: Vec<String> = (0..50).map(|i| purchase(&format!("e{i}"), "w")).collect();
    platform.ingest_all(&events).await;
    partner.wait_for_requests(1, 5 * SECOND).await;

    let started = Instant::now();
    platform.deactivate(&hook.id).await;
    platform.node().wait_for_lane(&hook.id, false, SECOND).await;
    // The one request in flight finishes; the 49 queued are dropped.
    let stats = platform.wait_for_outcomes(&hook.id, 50, 3 * SECOND).await;
    assert!(started.elapsed() < 2 * SECOND, "{:?}", started.elapsed());
    assert_eq!(
        (totals(&stats).dropped, totals(&stats).delivered),
        (49, 1),
        "{stats:?}"
    );
    platform.node().wait_idle(SECOND).await;
    assert_eq!(
        partner.request_count(),
        1,
        "nothing sent after deactivation"
    );
    assert_eq!(platform.node().queued(), 0);

    platform.activate(&hook.id).await;
    partner.set_default(Reply::Accept);
    platform.ingest_all(&[purchase("after", "w")]).await;
    let stats = platform.wait_for_outcomes(&hook.id, 51, 5 * SECOND).await;
    assert_eq!(totals(&stats).delivered, 2);
}

#[tokio::test]
async fn values_that_cannot_take_their_datatype_are_transformation_errors() {
    let partner = FakePartner::start(&Webhook).await;
    let mut platform = Platform::start(&[]).await;
    let typed = |source: &str, data_type: DataType| FieldMapping {
        required: true,
        ..mapping(source, &format!("out.{source}"), data_type)
    };
    let hook = platform
        .create(Connector {
            mappings: vec![
                typed("properties.integer", DataType::Integer),
                typed("properties.number", DataType::Number),
                typed("properties.boolean", DataType::Boolean),
                typed("properties.timestamp", DataType::Timestamp),
                typed("properties.string", DataType::String),
                typed("properties.email", DataType::Sha256),
            ],
            ..webhook("w", &partner.url())
        })
        .await;
    let good = json!({"integer": "42", "number": "1.5", "boolean": "true", "timestamp": "2026-11-29T10:00:00Z", "string": "text", "email": "a@b.example"});
    let bad_values = [
        ("integer", json!("forty-two")),
        ("number", json!("one and a half")),
        ("boolean", json!("maybe")),
        ("timestamp", json!("yesterday-ish")),
        ("string", json!({"nested": true})),
        ("email", json!([1, 2])),
    ];
    let mut events = vec![event("good", "w", "Order", good.clone())];
    for (field, value) in &bad_values {
        let mut properties = good.clone();
        properties[field] = value.clone();
        events.push(event(&format!("bad-{field}"), "w", "Order", properties));
    }
    let mut missing = good.clone();
    missing.as_object_mut().expect("object").remove("integer");
    events.push(event("missing", "w", "Order", missing));
    platform.ingest_all(&events).await;

    let stats = platform.wait_for_outcomes(&hook.id, 8, 5 * SECOND).await;
    assert_eq!(
        (
            totals(&stats).delivered,
            totals(&stats).transformation_errors
        ),
        (1, 7)
    );
    let mut groups: Vec<(String, bool, u64)> = stats
        .transformation_errors
        .iter()
        .map(|g| (g.target_field.clone(), g.reason == "missing", g.count))
        .collect();
    groups.sort();
    assert_eq!(
        groups,
        [
            ("out.properties.boolean".to_owned(), false, 1),
            ("out.properties.email".to_owned(), false, 1),
            ("out.properties.integer".to_owned(), false, 1),
            ("out.properties.integer".to_owned(), true, 1),
            ("out.properties.number".to_owned(), false, 1),
            ("out.properties.string".to_owned(), false, 1),
            ("out.properties.timestamp".to_owned(), false, 1),
        ],
        "{:?}",
        stats.transformation_errors
    );
    assert!(
        stats
            .transformation_errors
            .iter()
            .all(
                |g| !g.reason.is_empty() && g.sample_message.contains("bad-")
                    || g.sample_message.contains("missing")
            ),
        "{:?}",
        stats.transformation_errors
    );
    let failures = platform.recent_failures(&hook.id).await;
    let mut listed: Vec<(&str, &str, u32)> = failures
        .iter()
        .map(|f| (f.event_id.as_str(), f.target_field.as_str(), f.attempts))
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            ("bad-boolean", "out.properties.boolean", 0),
            ("bad-email", "out.properties.email", 0),
            ("bad-integer", "out.properties.integer", 0),
            ("bad-number", "out.properties.number", 0),
            ("bad-string", "out.properties.string", 0),
            ("bad-timestamp", "out.properties.timestamp", 0),
            ("missing", "out.properties.integer", 0),
        ]
    );
    assert!(
        failures
            .iter()
            .all(|f| f.outcome() == Outcome::TransformationError && !f.reason.is_empty()),
        "{failures:?}"
    );
    partner.wait_for_requests(1, 5 * SECOND).await;
    platform.node().wait_idle(5 * SECOND).await;
    let sent = partner.requests();
    assert_eq!(sent.len(), 1, "only the good event is sent");
    // The digest is `printf 'a@b.example' | sha256sum`.
    assert_eq!(
        sent[0].body["out"]["properties"],
        json!({"integer": 42, "number": 1.5, "boolean": true, "timestamp": "2026-11-29T10:00:00Z", "string": "text",
               "email": "ebb18a030bf15174f5714e24d63af1a81355c951ea7389bd2a9bd18e3d0c2477"})
    );
}

#[tokio::test]
async fn ingest_answers_per_event_and_requires_its_token() {
    let mut platform = Platform::start(&["--max-event-bytes", "300"]).await;
    let response = platform
        .ingest(&[
            purchase("fine", "w"),
            "{nope".to_owned(),
            "[1]".to_owned(),
            r#"{"id":"x","type":"t"}"#.to_owned(),
            format!(
                r#"{{"id":"big","workspace_id":"w","type":"t","pad":"{}"}}"#,
                "x".repeat(400)
            ),
        ])
        .await
        .expect("ingest");
    assert_eq!(response.accepted, 0, "`fine` is larger than 300 bytes too");
    let reasons: Vec<(u32, RejectReason)> = response
        .rejected
        .iter()
        .map(|r| (r.index, RejectReason::try_from(r.reason).expect("reason")))
        .collect();
    assert_eq!(
        reasons,
        [
            (0, RejectReason::TooLarge),
            (1, RejectReason::InvalidJson),
            (2, RejectReason::NotAnObject),
            (3, RejectReason::MissingField),
            (4, RejectReason::TooLarge),
        ]
    );

    let mut client = platform.node().ingest_client().await;
    let request = || IngestRequest {
        events: vec![r#"{"id":"a","workspace_id":"w","type":"t"}"#.to_owned()],
        sequence: 7,
    };
    let status = client.ingest(request()).await.expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated);
    let status = client
        .ingest(with_token(request(), "wrong"))
        .await
        .expect_err("wrong token");
    assert_eq!(status.code(), Code::Unauthenticated);
    let reply = client
        .ingest(with_token(request(), INGEST_TOKEN))
        .await
        .expect("token")
        .into_inner();
    assert_eq!((reply.sequence, reply.accepted), (7, 1));
}

#[tokio::test]
async fn a_stream_answers_each_batch_in_order() {
    let partner = FakePartner::start(&Webhook).await;
    let mut platform = Platform::start(&[]).await;
    let hook = platform.create(webhook("w", &partner.url())).await;
    let mut client = platform.node().ingest_client().await;
    let batches: Vec<IngestRequest> = (0..20u64)
        .map(|sequence| IngestRequest {
            events: (0..5)
                .map(|i| purchase(&format!("s{sequence}-{i}"), "w"))
                .collect(),
            sequence,
        })
        .collect();
    let mut replies = client
        .ingest_stream(with_token(futures::stream::iter(batches), INGEST_TOKEN))
        .await
        .expect("stream")
        .into_inner();
    let mut sequences = Vec::new();
    while let Some(reply) = replies.message().await.expect("reply") {
        assert_eq!(reply.accepted, 5);
        sequences.push(reply.sequence);
    }
    assert_eq!(sequences, (0..20).collect::<Vec<_>>());
    let stats = platform.wait_for_outcomes(&hook.id, 100, 5 * SECOND).await;
    assert_eq!(totals(&stats).delivered, 100);
}

#[tokio::test]
async fn full_queues_refuse_events_instead_of_dropping_them() {
    let partner = FakePartner::start(&Webhook).await;
    partner.set_default(Reply::Delay(
        Duration::from_millis(300),
        Box::new(Reply::Accept),
    ));
    let mut platform = Platform::start(&[
        "--connector-queue-capacity",
        "10",
        "--connector-concurrency",
        "1",
    ])
    .await;
    let hook = platform.create(webhook("w", &partner.url())).await;
    let events: Vec<String> = (0..15).map(|i| purchase(&format!("e{i}"), "w")).collect();
    let response = platform.ingest(&events).await.expect("ingest");
    assert_eq!(response.accepted, 10);
    assert!(
        response
            .rejected
            .iter()
            .all(|r| r.reason == RejectReason::QueueFull as i32)
            && response.rejected.len() == 5
    );
    let status = platform
        .ingest(&events[..3])
        .await
        .expect_err("nothing fits");
    assert_eq!(status.code(), Code::ResourceExhausted);
    let stats = platform.wait_for_outcomes(&hook.id, 10, 10 * SECOND).await;
    assert_eq!(
        totals(&stats).delivered,
        10,
        "every accepted event delivered"
    );
    assert_eq!(partner.request_count(), 10);
}

#[tokio::test]
async fn shutdown_drains_the_queues_and_flushes_outcomes() {
    let partner = FakePartner::start(&Webhook).await;
    partner.set_default(Reply::Delay(
        Duration::from_millis(20),
        Box::new(Reply::Accept),
    ));
    let mut platform = Platform::start(&["--connector-concurrency", "2"]).await;
    let hook = platform.create(webhook("w", &partner.url())).await;
    let events: Vec<String> = (0..40).map(|i| purchase(&format!("e{i}"), "w")).collect();
    platform.ingest_all(&events).await;
    platform.stop_node().await;
    // Everything was delivered within the grace period and reported
    // before the node exited.
    assert_eq!(partner.request_count(), 40);
    let stats = platform.stats_of(&hook.id).await;
    assert_eq!(totals(&stats).delivered, 40, "{stats:?}");
}

#[tokio::test]
async fn shutdown_fails_what_the_grace_period_could_not_deliver() {
    let partner = FakePartner::start(&Webhook).await;
    partner.set_default(Reply::Delay(
        Duration::from_secs(30),
        Box::new(Reply::Accept),
    ));
    let mut platform = Platform::start(&[
        "--connector-concurrency",
        "1",
        "--shutdown-grace",
        "300ms",
        "--delivery-timeout",
        "1s",
    ])
    .await;
    let hook = platform.create(webhook("w", &partner.url())).await;
    let events: Vec<String> = (0..10).map(|i| purchase(&format!("e{i}"), "w")).collect();
    platform.ingest_all(&events).await;
    partner.wait_for_requests(1, 5 * SECOND).await;
    platform.stop_node().await;
    let stats = platform.stats_of(&hook.id).await;
    let mut groups = errors(&stats);
    groups.sort();
    // The 9 queued events, and the one on the wire once its attempt timed
    // out (instead of a retry), were ended by the shutdown; every one is
    // counted before the node exits.
    assert_eq!(total(stats.totals.as_ref()), 10, "{stats:?}");
    assert_eq!(groups, [(ErrorCategory::Other, String::new(), 10)]);
    assert!(
        stats.connector_errors[0]
            .sample_message
            .starts_with("shutdown"),
        "{:?}",
        stats.connector_errors
    );
}

/// A mix of everything that can happen to an event: every accepted event
/// ends in exactly one outcome per connector it matched.
#[tokio::test]
async fn no_accepted_event_is_left_without_an_outcome() {
    let flaky = FakePartner::start(&Webhook).await;
    let status = |status| Reply::Status {
        status,
        retry_after: None,
    };
    flaky.script(
        [
            status(500),
            Reply::Accept,
            status(401),
            status(400),
            Reply::Delay(SECOND, Box::new(Reply::Accept)),
        ]
        .into_iter()
        .cycle()
        .take(200),
    );
    let meta_partner = FakePartner::start(&MetaCapi).await;
    meta_partner.script([Reply::Partial { accepted: 7 }]);
    let slow = FakePartner::start(&Webhook).await;
    slow.set_default(Reply::Delay(
        Duration::from_millis(200),
        Box::new(Reply::Accept),
    ));
    let meta_base = meta_partner.base_url();
    let mut platform = Platform::start(&[
        "--meta-base-url",
        &meta_base,
        "--delivery-timeout",
        "300ms",
        "--linger",
        "20ms",
        "--connector-concurrency",
        "2",
    ])
    .await;
    let flaky_hook = platform.create(webhook("mix", &flaky.url())).await;
    let meta = platform.create(meta("mix")).await;
    let typed = platform
        .create(Connector {
            mappings: vec![FieldMapping {
                required: true,
                ..mapping("properties.total", "value", DataType::Integer)
            }],
            ..webhook("mix", &slow.url())
        })
        .await;
    let only_purchases = platform
        .create(Connector {
            filter: Some(EventFilter {
                event_types: vec!["Purchase".to_owned()],
                condition: None,
            }),
            ..webhook("mix", &slow.url())
        })
        .await;

    let events: Vec<String> = (0..60)
        .map(|i| {
            let kind = if i % 3 == 0 { "PageView" } else { "Purchase" };
            let total = if i % 4 == 0 { json!("12.5") } else { json!(i) };
            event(&format!("m{i}"), "mix", kind, json!({"total": total}))
        })
        .collect();
    platform.ingest_all(&events).await;
    // Deactivated while its events are on their way to the slow partner.
    slow.wait_for_requests(1, 5 * SECOND).await;
    platform.deactivate(&only_purchases.id).await;

    let purchases = events.iter().filter(|e| e.contains("\"Purchase\"")).count() as u64;
    for (connector, expected) in [
        (&flaky_hook.id, 60),
        (&meta.id, 60),
        (&typed.id, 60),
        (&only_purchases.id, purchases),
    ] {
        let stats = platform
            .wait_for_outcomes(connector, expected, 15 * SECOND)
            .await;
        assert_eq!(
            total(stats.totals.as_ref()),
            expected,
            "{connector}: {stats:?}"
        );
    }
    let typed_stats = platform.stats_of(&typed.id).await;
    assert_eq!(
        totals(&typed_stats).transformation_errors,
        15,
        "every 4th total is 12.5"
    );
    let meta_stats = platform.stats_of(&meta.id).await;
    assert!(totals(&meta_stats).failed > 0 && totals(&meta_stats).delivered > 0);
    platform.node().wait_idle(5 * SECOND).await;
    // Drained and flushed (acknowledged) at stop: anything counted twice
    // would show now.
    platform.stop_node().await;
    for (connector, expected) in [(&flaky_hook.id, 60), (&only_purchases.id, purchases)] {
        let stats = platform.stats_of(connector).await;
        assert_eq!(
            total(stats.totals.as_ref()),
            expected,
            "no outcome counted twice"
        );
    }
}

#[tokio::test]
async fn shutdown_ends_ingest_streams_with_unavailable_at_once() {
    let partner = FakePartner::start(&Webhook).await;
    let mut platform = Platform::start(&["--shutdown-grace", "5s"]).await;
    platform.create(webhook("w", &partner.url())).await;
    let mut client = platform.node().ingest_client().await;
    let first = IngestRequest {
        events: vec![purchase("s-1", "w")],
        sequence: 1,
    };
    // A producer that keeps its stream open after its first batch.
    let requests =
        futures::StreamExt::chain(futures::stream::iter([first]), futures::stream::pending());
    let mut replies = client
        .ingest_stream(with_token(requests, INGEST_TOKEN))
        .await
        .expect("stream")
        .into_inner();
    let reply = replies.message().await.expect("reply").expect("one");
    assert_eq!(reply.accepted, 1);
    let started = Instant::now();
    platform.stop_node().await;
    assert!(
        started.elapsed() < 2 * SECOND,
        "the open stream did not hold the shutdown: {:?}",
        started.elapsed()
    );
    let status = replies.message().await.expect_err("stream ended");
    assert_eq!(status.code(), Code::Unavailable, "{status}");
}

/// An event goes to all its connectors or to none: when one of them is
/// full the event is refused, and the others do not get it either.
#[tokio::test]
async fn an_event_is_taken_for_all_its_connectors_or_refused() {
    let slow = FakePartner::start(&Webhook).await;
    slow.set_default(Reply::Delay(
        Duration::from_millis(500),
        Box::new(Reply::Accept),
    ));
    let fast = FakePartner::start(&Webhook).await;
    let mut platform = Platform::start(&[
        "--connector-queue-capacity",
        "4",
        "--connector-concurrency",
        "1",
    ])
    .await;
    let slow_hook = platform.create(webhook("w", &slow.url())).await;
    let fast_hook = platform.create(webhook("w", &fast.url())).await;
    let events: Vec<String> = (0..10).map(|i| purchase(&format!("e{i}"), "w")).collect();
    let response = platform.ingest(&events).await.expect("ingest");
    assert_eq!(response.accepted, 4, "the slow connector has room for 4");
    assert!(
        response
            .rejected
            .iter()
            .all(|r| r.reason == RejectReason::QueueFull as i32)
            && response.rejected.len() == 6
    );
    for hook in [&slow_hook, &fast_hook] {
        let stats = platform.wait_for_outcomes(&hook.id, 4, 10 * SECOND).await;
        assert_eq!(totals(&stats).delivered, 4, "{stats:?}");
    }
    platform.node().wait_idle(5 * SECOND).await;
    assert_eq!(
        fast.request_count(),
        4,
        "refused events reached no connector"
    );
    assert_eq!(platform.node().queued(), 0, "every reservation given back");
}

/// Outcomes made while the stats service is away are kept, and a node
/// stopped before its next reconnection still delivers them on one last
/// stream before it exits.
#[tokio::test]
async fn outcomes_kept_through_a_stats_outage_are_flushed_at_shutdown() {
    let partner = FakePartner::start(&Webhook).await;
    // The node reports to an address where no stats service runs yet, and
    // waits 3 s between reconnections: it is stopped inside that wait.
    let stats_addr = e2e_tests::metrics::free_address();
    let stats_url = format!("http://{stats_addr}");
    let mut platform = Platform::start(&[
        "--stats",
        &stats_url,
        "--config-backoff-min",
        "3s",
        "--config-backoff-max",
        "3s",
    ])
    .await;
    let hook = platform.create(webhook("w", &partner.url())).await;
    let events: Vec<String> = (0..5).map(|i| purchase(&format!("e{i}"), "w")).collect();
    platform.ingest_all(&events).await;
    partner.wait_for_requests(5, 5 * SECOND).await;
    // Sealed into batches the stats service never acknowledged; the
    // reporter is in its 3 s wait.
    platform
        .node()
        .wait_for_sealed_deliveries(5, 5 * SECOND)
        .await;
    let stats = StatsHandle::start(Backend::Memory, &RedisPrefix::new(), stats_addr).await;
    let started = Instant::now();
    platform.stop_node().await;
    assert!(started.elapsed() < 3 * SECOND, "{:?}", started.elapsed());
    let reported = StatsServiceClient::new(stats.channel().await)
        .get_connector_stats(with_token(
            GetConnectorStatsRequest {
                connector_id: hook.id.clone(),
                preset: StatsPreset::Last7Days as i32,
                ..Default::default()
            },
            e2e_tests::stats::STATS_ADMIN_TOKEN,
        ))
        .await
        .expect("stats")
        .into_inner();
    assert_eq!(totals(&reported).delivered, 5, "{reported:?}");
}
