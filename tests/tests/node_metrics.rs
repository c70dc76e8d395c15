//! The node's Prometheus endpoint, scraped over HTTP after real traffic.
//! (Its own test binary: the metrics recorder is process-wide.)

use std::time::Duration;

use e2e_tests::metrics;
use e2e_tests::partners::{FakePartner, Reply, Webhook};
use e2e_tests::platform::{Platform, event};
use eventconnectors_proto::v1::Connector;
use serde_json::json;

#[tokio::test]
async fn counters_gauges_and_the_attempt_histogram_are_served() {
    let address = metrics::free_address();
    data_plane::metrics::install(address).expect("metrics endpoint");
    let partner = FakePartner::start(&Webhook).await;
    partner.script([Reply::Status {
        status: 401,
        retry_after: None,
    }]);
    let mut platform = Platform::start(&[]).await;
    let hook = platform
        .create(Connector {
            workspace_id: "w".to_owned(),
            name: "hook".to_owned(),
            partner: "webhook".to_owned(),
            settings: [("url".to_owned(), partner.url())].into(),
            ..Default::default()
        })
        .await;
    let events: Vec<String> = (0..3)
        .map(|i| event(&format!("e{i}"), "w", "Signup", json!({})))
        .collect();
    let mut batch = events.clone();
    batch.push("not json".to_owned());
    let response = platform.ingest(&batch).await.expect("ingest");
    assert_eq!(response.accepted, 3);
    platform
        .wait_for_outcomes(&hook.id, 3, Duration::from_secs(5))
        .await;
    // Gauges are published on a one-second tick.
    let depth = format!(r#"eventconnectors_queue_depth{{connector="{}"}}"#, hook.id);
    let page = metrics::scrape_until(address, &depth, Duration::from_secs(5)).await;
    let value = |series: &str| metrics::value(&page, series);
    assert_eq!(value("eventconnectors_events_received_total"), 4.0);
    assert_eq!(value("eventconnectors_config_connected"), 1.0);
    assert_eq!(
        value(r#"eventconnectors_events_rejected_total{reason="INVALID_JSON"}"#),
        1.0
    );
    assert_eq!(
        value(
            r#"eventconnectors_outcomes_total{partner="webhook",outcome="DELIVERED",category="ERROR_CATEGORY_UNSPECIFIED"}"#
        ),
        2.0
    );
    assert_eq!(
        value(
            r#"eventconnectors_outcomes_total{partner="webhook",outcome="FAILED",category="INVALID_CREDENTIALS"}"#
        ),
        1.0
    );
    assert_eq!(
        value(r#"eventconnectors_attempt_duration_seconds_count{partner="webhook"}"#),
        3.0
    );
    let connector = &hook.id;
    assert_eq!(
        value(&format!(
            r#"eventconnectors_queue_depth{{connector="{connector}"}}"#
        )),
        0.0
    );
    assert_eq!(
        value(&format!(
            r#"eventconnectors_breaker_state{{connector="{connector}"}}"#
        )),
        0.0
    );
}
