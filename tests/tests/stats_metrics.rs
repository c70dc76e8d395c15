//! The stats service's Prometheus endpoint, scraped over HTTP after real
//! intake and queries. (Its own test binary: the recorder is process-wide.)

use e2e_tests::metrics;
use e2e_tests::stats::{Backend, RedisPrefix, StatsHandle, report};
use e2e_tests::with_token;
use eventconnectors_proto::v1::stats_service_client::StatsServiceClient;
use eventconnectors_proto::v1::{
    GetConnectorStatsRequest, Outcome, OutcomeBatch, OutcomeCount, StatsPreset,
};

#[tokio::test]
async fn intake_and_queries_are_counted() {
    let address = metrics::free_address();
    stats_service::metrics::install(address).expect("metrics endpoint");
    let prefix = RedisPrefix::new();
    let server = StatsHandle::start(
        Backend::Redis,
        &prefix,
        "127.0.0.1:0".parse().expect("addr"),
    )
    .await;
    let mut client = StatsServiceClient::new(server.channel().await);
    let now = jiff::Timestamp::now().as_second();
    let batch = OutcomeBatch {
        batch_id: "b1".to_owned(),
        node_id: "n".to_owned(),
        counts: vec![OutcomeCount {
            connector_id: "c".to_owned(),
            bucket_start: Some(prost_types::Timestamp {
                seconds: now - now.rem_euclid(3600),
                nanos: 0,
            }),
            outcome: Outcome::Delivered as i32,
            count: 5,
            ..Default::default()
        }],
        failures: Vec::new(),
    };
    // Sent twice: applied once, then recognized as a duplicate.
    assert_eq!(
        report(&mut client, vec![batch.clone(), batch]).await.len(),
        2
    );
    client
        .get_connector_stats(with_token(
            GetConnectorStatsRequest {
                connector_id: "c".to_owned(),
                preset: StatsPreset::Last7Days as i32,
                ..Default::default()
            },
            e2e_tests::stats::STATS_ADMIN_TOKEN,
        ))
        .await
        .expect("stats");

    let page = metrics::scrape(address).await;
    let value = |series: &str| metrics::value(&page, series);
    assert_eq!(
        value(r#"eventconnectors_stats_batches_total{result="applied"}"#),
        1.0
    );
    assert_eq!(
        value(r#"eventconnectors_stats_batches_total{result="duplicate"}"#),
        1.0
    );
    assert_eq!(value("eventconnectors_stats_counts_total"), 1.0);
    assert_eq!(
        value("eventconnectors_stats_query_duration_seconds_count"),
        1.0
    );
    // Both went through group commit: in one script or in two.
    assert_eq!(value("eventconnectors_stats_write_group_batches_sum"), 2.0);
}
