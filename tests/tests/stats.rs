//! Statistics end to end: a real stats service on a loopback port over real
//! Redis (and the in-process store, which must behave the same), fed and
//! read through real gRPC clients.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use e2e_tests::control_plane::{ControlPlaneHandle, Db, Options, TestStore};
use e2e_tests::fixtures::{create, meta_connector};
use e2e_tests::stats::{
    Backend, OUTCOMES_TOKEN, RedisPrefix, STATS_ADMIN_TOKEN, StatsHandle, report,
};
use e2e_tests::with_token;
use eventconnectors_proto::v1::stats_service_client::StatsServiceClient;
use eventconnectors_proto::v1::{
    DeleteConnectorRequest, DeleteConnectorStatsRequest, ErrorCategory, FailedEvent,
    GetConnectorStatsRequest, GetConnectorStatsResponse, Granularity, ListRecentFailuresRequest,
    Outcome, OutcomeBatch, OutcomeCount, OutcomeTotals, StatsPreset,
};
use stats_service::batch::{Applied, BucketWrite, ConnectorBatch};
use stats_service::clock::Clock;
use stats_service::counters::{Counters, MarkerTtls, MemoryCounters, RedisCounters};
use tonic::transport::Channel;
use tonic::{Code, Request};
use tonic_types::StatusExt;

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

e2e_tests::each_backend!(
    [
        redis => super::Backend::Redis,
        redis_cluster_mode => super::Backend::RedisCluster,
        memory => super::Backend::Memory
    ],
    [
    a_resent_batch_is_counted_once,
        concurrent_reports_from_many_nodes_add_up_exactly,
        a_batch_of_thousands_of_connectors_applies_whole,
        thousands_of_error_groups_in_concurrent_batches_add_up,
        an_absurd_count_is_refused_by_its_ack,
        a_batch_spanning_many_hours_applies_whole,
        presets_include_whole_local_days_and_exclude_the_day_before,
        custom_ranges_respect_hour_edges_and_time_zones,
        errors_tabs_group_and_sample,
        invalid_ranges_are_invalid_argument_with_the_reason,
        delete_erases_and_the_tombstone_keeps_late_outcomes_out,
        recent_failures_are_the_newest_hundred_paged_and_erased_on_delete,
        each_rpc_requires_its_token,
        buckets_expire_at_their_end_of_retention,
    ]
);

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

fn ts(unix: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: unix,
        nanos: 0,
    }
}

fn count(connector: &str, at: i64, outcome: Outcome, n: u64) -> OutcomeCount {
    OutcomeCount {
        connector_id: connector.to_owned(),
        bucket_start: Some(ts(at - at.rem_euclid(HOUR))),
        outcome: outcome as i32,
        count: n,
        ..Default::default()
    }
}

fn batch(id: &str, counts: Vec<OutcomeCount>) -> OutcomeBatch {
    OutcomeBatch {
        batch_id: id.to_owned(),
        node_id: "test-node".to_owned(),
        counts,
        failures: Vec::new(),
    }
}

/// Failed event `event_id` of `connector` at `at`.
fn failed_event(connector: &str, event_id: &str, at: i64) -> FailedEvent {
    FailedEvent {
        connector_id: connector.to_owned(),
        event_id: event_id.to_owned(),
        at: Some(ts(at)),
        outcome: Outcome::Failed as i32,
        category: ErrorCategory::PartnerError as i32,
        partner_code: "400/100".into(),
        attempts: 1,
        message: "Invalid parameter".into(),
        ..Default::default()
    }
}

/// Every recent failure of `connector`, page by page (`page_size` each),
/// with the operator token.
async fn recent_failures(
    client: &mut StatsServiceClient<Channel>,
    connector: &str,
    page_size: u32,
) -> Vec<FailedEvent> {
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_recent_failures(with_token(
                ListRecentFailuresRequest {
                    connector_id: connector.to_owned(),
                    page_size,
                    page_token,
                },
                STATS_ADMIN_TOKEN,
            ))
            .await
            .expect("list recent failures")
            .into_inner();
        assert!(page.failures.len() <= page_size as usize);
        all.extend(page.failures);
        if page.next_page_token.is_empty() {
            return all;
        }
        page_token = page.next_page_token;
    }
}

async fn stats(
    client: &mut StatsServiceClient<Channel>,
    request: GetConnectorStatsRequest,
) -> GetConnectorStatsResponse {
    client
        .get_connector_stats(with_token(request, STATS_ADMIN_TOKEN))
        .await
        .expect("stats")
        .into_inner()
}

fn preset(connector: &str, preset: StatsPreset) -> GetConnectorStatsRequest {
    GetConnectorStatsRequest {
        connector_id: connector.to_owned(),
        preset: preset as i32,
        ..Default::default()
    }
}

fn custom(connector: &str, from: i64, to: i64, zone: &str) -> GetConnectorStatsRequest {
    GetConnectorStatsRequest {
        connector_id: connector.to_owned(),
        from: Some(ts(from)),
        to: Some(ts(to)),
        time_zone: zone.to_owned(),
        ..Default::default()
    }
}

/// (start, delivered) of each point of the series.
fn delivered_series(response: &GetConnectorStatsResponse) -> Vec<(i64, u64)> {
    response
        .series
        .iter()
        .map(|p| {
            (
                p.start.expect("start").seconds,
                p.totals.expect("totals").delivered,
            )
        })
        .collect()
}

fn totals(response: &GetConnectorStatsResponse) -> OutcomeTotals {
    response.totals.expect("totals")
}

fn delivered(n: u64) -> OutcomeTotals {
    OutcomeTotals {
        delivered: n,
        ..Default::default()
    }
}

/// A stats service on `backend` whose clock is stopped at the returned
/// time: presets ("today" and the days before) are computed from it, so a
/// test running across midnight sees the same days as at its start.
async fn start(backend: Backend) -> (StatsHandle, RedisPrefix, StatsServiceClient<Channel>, i64) {
    let prefix = RedisPrefix::new();
    let t = now();
    let server = StatsHandle::start_at(
        backend,
        &prefix,
        "127.0.0.1:0".parse().expect("addr"),
        Clock::Fixed(t),
    )
    .await;
    let client = StatsServiceClient::new(server.channel().await);
    (server, prefix, client, t)
}

async fn a_resent_batch_is_counted_once(backend: Backend) {
    let (_server, _prefix, mut client, t) = start(backend).await;
    let b1 = batch(
        "b1",
        vec![
            count("c1", t, Outcome::Delivered, 10),
            count("c2", t, Outcome::Dropped, 3),
        ],
    );
    // Twice on one stream (a node that timed out waiting), then on a new stream.
    assert_eq!(
        report(&mut client, vec![b1.clone(), b1.clone()]).await,
        ["b1", "b1"]
    );
    assert_eq!(report(&mut client, vec![b1.clone()]).await, ["b1"]);
    let c1 = stats(&mut client, preset("c1", StatsPreset::Last7Days)).await;
    assert_eq!(totals(&c1), delivered(10));
    let c2 = stats(&mut client, preset("c2", StatsPreset::Last7Days)).await;
    assert_eq!(totals(&c2).dropped, 3);
    // A new batch id counts again.
    report(
        &mut client,
        vec![batch("b2", vec![count("c1", t, Outcome::Delivered, 1)])],
    )
    .await;
    assert_eq!(
        totals(&stats(&mut client, preset("c1", StatsPreset::Last7Days)).await),
        delivered(11)
    );
}

async fn concurrent_reports_from_many_nodes_add_up_exactly(backend: Backend) {
    let (_server, _prefix, client, t) = start(backend).await;
    let nodes = 12;
    let batches_per_node = 20;
    let reports = (0..nodes).map(|node| {
        let mut client = client.clone();
        async move {
            let batches = (0..batches_per_node)
                .map(|b| {
                    let n = (node * 31 + b * 7) % 13 + 1;
                    batch(
                        &format!("n{node}-b{b}"),
                        vec![
                            count("shared", t - (b as i64 % 3) * HOUR, Outcome::Delivered, n),
                            count("shared", t, Outcome::Failed, 1),
                        ],
                    )
                })
                .collect::<Vec<_>>();
            // Every node also re-sends its first batch on the same stream,
            // and all of them at once on a second stream (a node that gave up
            // on the first), so copies race into the same writes: none may
            // count twice.
            let mut with_resend = batches.clone();
            with_resend.push(batches[0].clone());
            let mut again = batches;
            again.reverse();
            let mut second = client.clone();
            let (first, second) =
                tokio::join!(report(&mut client, with_resend), report(&mut second, again));
            first.len() + second.len()
        }
    });
    let acked: usize = futures::future::join_all(reports).await.into_iter().sum();
    assert_eq!(acked as u64, nodes * (2 * batches_per_node + 1));
    let expected_delivered: u64 = (0..nodes)
        .flat_map(|node| (0..batches_per_node).map(move |b| (node * 31 + b * 7) % 13 + 1))
        .sum();
    let mut client = client.clone();
    let response = stats(&mut client, preset("shared", StatsPreset::Last7Days)).await;
    assert_eq!(totals(&response).delivered, expected_delivered);
    assert_eq!(totals(&response).failed, nodes * batches_per_node);
    let series_sum: u64 = delivered_series(&response).iter().map(|(_, n)| n).sum();
    assert_eq!(
        series_sum, expected_delivered,
        "the series adds up to the totals"
    );
    assert_eq!(response.connector_errors[0].count, nodes * batches_per_node);
}

async fn a_batch_of_thousands_of_connectors_applies_whole(backend: Backend) {
    let (_server, _prefix, mut client, t) = start(backend).await;
    // A node serving thousands of connectors seals them all in one batch:
    // more tombstones than one Lua unpack can take (8,000).
    client
        .delete_connector_stats(with_token(
            DeleteConnectorStatsRequest {
                connector_id: "c-1234".into(),
            },
            STATS_ADMIN_TOKEN,
        ))
        .await
        .expect("delete");
    let connectors = 9_000;
    let counts = (0..connectors)
        .map(|c| count(&format!("c-{c}"), t, Outcome::Delivered, c + 1))
        .collect();
    assert_eq!(
        report(&mut client, vec![batch("big", counts)]).await,
        ["big"]
    );
    for c in [0, 999, 1000, 8_999] {
        let response = stats(
            &mut client,
            preset(&format!("c-{c}"), StatsPreset::Last7Days),
        )
        .await;
        assert_eq!(totals(&response), delivered(c + 1), "c-{c}");
    }
    let deleted = stats(&mut client, preset("c-1234", StatsPreset::Last7Days)).await;
    assert_eq!(
        totals(&deleted),
        OutcomeTotals::default(),
        "the deleted connector's part is discarded, the rest applied"
    );
}

async fn thousands_of_error_groups_in_concurrent_batches_add_up(backend: Backend) {
    let (_server, _prefix, client, t) = start(backend).await;
    // Many distinct reasons for one connector, in batches small enough to
    // be written together: every group keeps its own count and the totals
    // add up.
    let groups = 150u64;
    let batches = 16u64;
    let reports = (0..batches).map(|b| {
        let mut client = client.clone();
        async move {
            let counts = (0..groups)
                .map(|g| OutcomeCount {
                    target_field: "custom_data.value".into(),
                    reason: format!("reason {g}"),
                    sample_message: format!("batch {b}"),
                    ..count("wide", t, Outcome::TransformationError, g + 1)
                })
                .collect();
            report(&mut client, vec![batch(&format!("wide-{b}"), counts)]).await
        }
    });
    futures::future::join_all(reports).await;
    let mut client = client.clone();
    let response = stats(&mut client, preset("wide", StatsPreset::Last7Days)).await;
    assert_eq!(
        totals(&response).transformation_errors,
        batches * groups * (groups + 1) / 2
    );
    assert_eq!(response.transformation_errors.len() as u64, groups);
    for group in &response.transformation_errors {
        let g: u64 = group.reason["reason ".len()..].parse().expect("reason");
        assert_eq!(group.count, batches * (g + 1), "{}", group.reason);
    }
}

async fn an_absurd_count_is_refused_by_its_ack(backend: Backend) {
    let (_server, _prefix, mut client, t) = start(backend).await;
    let request = with_token(
        futures::stream::iter(vec![batch(
            "absurd",
            vec![count("c", t, Outcome::Delivered, 1 << 41)],
        )]),
        OUTCOMES_TOKEN,
    );
    let mut acks = client
        .report_outcomes(request)
        .await
        .expect("stream")
        .into_inner();
    // Refused by its ack: the node drops it rather than re-send it on every
    // stream, and the stream goes on.
    let ack = acks.message().await.expect("stream").expect("ack");
    assert_eq!(ack.batch_id, "absurd");
    assert!(ack.rejected.contains("counts[0].count: at most"), "{ack:?}");
    let stats = stats(&mut client, preset("c", StatsPreset::Last7Days)).await;
    assert_eq!(
        stats.totals.unwrap_or_default().delivered,
        0,
        "nothing counted"
    );
}

async fn a_batch_spanning_many_hours_applies_whole(backend: Backend) {
    let (_server, _prefix, mut client, t) = start(backend).await;
    // A backfill: one count an hour over the last three days, in one batch.
    let counts = (0..72)
        .map(|h| count("backfill", t - h * HOUR, Outcome::Delivered, h as u64 + 1))
        .collect();
    report(&mut client, vec![batch("backfill", counts)]).await;
    let response = stats(&mut client, preset("backfill", StatsPreset::Last7Days)).await;
    assert_eq!(totals(&response), delivered(72 * 73 / 2));
    let hour = t - t.rem_euclid(HOUR);
    let hourly = stats(
        &mut client,
        custom("backfill", hour - 47 * HOUR, hour + HOUR, ""),
    )
    .await;
    let series: Vec<u64> = delivered_series(&hourly).iter().map(|(_, n)| *n).collect();
    assert_eq!(series.len(), 48);
    assert_eq!(
        series,
        (1..=48).rev().collect::<Vec<u64>>(),
        "one count an hour, newest last"
    );
}

async fn presets_include_whole_local_days_and_exclude_the_day_before(backend: Backend) {
    let (_server, _prefix, mut client, t) = start(backend).await;
    let today = t - t.rem_euclid(DAY);
    report(
        &mut client,
        vec![batch(
            "p",
            vec![
                count("c", t, Outcome::Delivered, 5),
                count("c", today - 6 * DAY + 1800, Outcome::Delivered, 7),
                count("c", today - 6 * DAY - 1, Outcome::Delivered, 11),
                count("c", today - 29 * DAY, Outcome::Delivered, 3),
                count("c", today - 30 * DAY - 1, Outcome::Delivered, 100),
                count("c", today - 89 * DAY, Outcome::Delivered, 13),
                count("c", today - 95 * DAY, Outcome::Delivered, 17),
            ],
        )],
    )
    .await;
    let week = stats(&mut client, preset("c", StatsPreset::Last7Days)).await;
    assert_eq!(
        totals(&week),
        delivered(12),
        "today and the 6 days before, not the 7th"
    );
    assert_eq!(week.granularity, Granularity::Day as i32);
    assert_eq!(week.series.len(), 7);
    assert_eq!(week.from, Some(ts(today - 6 * DAY)));
    assert_eq!(week.to, Some(ts(today + DAY)));
    assert_eq!(week.series[6].totals.expect("today").delivered, 5);
    assert_eq!(week.series[0].totals.expect("first").delivered, 7);
    let month = stats(&mut client, preset("c", StatsPreset::Last30Days)).await;
    assert_eq!(totals(&month), delivered(12 + 11 + 3));
    assert_eq!(month.series.len(), 30);
    let quarter = stats(&mut client, preset("c", StatsPreset::Last90Days)).await;
    assert_eq!(totals(&quarter), delivered(12 + 11 + 3 + 100 + 13));
    assert_eq!(quarter.series.len(), 90);
}

async fn custom_ranges_respect_hour_edges_and_time_zones(backend: Backend) {
    let (_server, _prefix, mut client, t) = start(backend).await;
    let h = t - t.rem_euclid(HOUR) - 10 * HOUR;
    report(
        &mut client,
        vec![batch(
            "edges",
            vec![
                count("c", h - HOUR, Outcome::Delivered, 1),
                count("c", h, Outcome::Delivered, 2),
                count("c", h + 2 * HOUR, Outcome::Delivered, 4),
                count("c", h + 3 * HOUR, Outcome::Delivered, 8),
            ],
        )],
    )
    .await;
    let hours = stats(&mut client, custom("c", h, h + 3 * HOUR, "")).await;
    assert_eq!(hours.granularity, Granularity::Hour as i32);
    let points: Vec<u64> = delivered_series(&hours).iter().map(|(_, n)| *n).collect();
    assert_eq!(points, [2, 0, 4], "from is inclusive, to exclusive");
    // Minutes inside an hour widen the range to whole hours.
    let widened = stats(&mut client, custom("c", h + 600, h + 2 * HOUR + 60, "")).await;
    assert_eq!(
        (widened.from, widened.to),
        (Some(ts(h)), Some(ts(h + 3 * HOUR)))
    );
    assert_eq!(totals(&widened), delivered(6));

    // Tokyo is UTC+9 all year: 14:30 UTC is 23:30 there, 15:30 UTC is 00:30 the next day.
    let day = t - t.rem_euclid(DAY) - 5 * DAY;
    report(
        &mut client,
        vec![batch(
            "tokyo",
            vec![
                count("tz", day + 14 * HOUR + 1800, Outcome::Delivered, 3),
                count("tz", day + 15 * HOUR + 1800, Outcome::Delivered, 5),
            ],
        )],
    )
    .await;
    let tokyo = stats(
        &mut client,
        custom("tz", day - DAY, day + 2 * DAY, "Asia/Tokyo"),
    )
    .await;
    assert_eq!(tokyo.granularity, Granularity::Day as i32);
    let by_day: Vec<(i64, u64)> = delivered_series(&tokyo)
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(
        by_day,
        [(day - 9 * HOUR, 3), (day + 15 * HOUR, 5)],
        "split at Tokyo midnight (15:00 UTC)"
    );
    let utc = stats(&mut client, custom("tz", day - DAY, day + 2 * DAY, "")).await;
    let by_day: Vec<(i64, u64)> = delivered_series(&utc)
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(by_day, [(day, 8)], "the same hours fall on one UTC day");
}

async fn errors_tabs_group_and_sample(backend: Backend) {
    let (_server, _prefix, mut client, t) = start(backend).await;
    let failed = |category: ErrorCategory, code: &str, n: u64, sample: &str| OutcomeCount {
        category: category as i32,
        partner_code: code.to_owned(),
        sample_message: sample.to_owned(),
        ..count("c", t, Outcome::Failed, n)
    };
    let transformation = |field: &str, reason: &str, n: u64| OutcomeCount {
        target_field: field.to_owned(),
        reason: reason.to_owned(),
        sample_message: format!("{field}: {reason} (\"abc\")"),
        ..count("c", t, Outcome::TransformationError, n)
    };
    report(
        &mut client,
        vec![batch(
            "errors",
            vec![
                failed(
                    ErrorCategory::PartnerError,
                    "400/190",
                    3,
                    "Error validating access token",
                ),
                failed(ErrorCategory::Timeout, "", 2, "no answer within 3s"),
                failed(
                    ErrorCategory::PartnerError,
                    "400/100",
                    1,
                    "Invalid parameter",
                ),
                transformation("custom_data.value", "not a number", 4),
                transformation("event_time", "not a timestamp", 1),
                count("c", t, Outcome::Delivered, 50),
            ],
        )],
    )
    .await;
    let response = stats(&mut client, preset("c", StatsPreset::Last7Days)).await;
    assert_eq!(
        totals(&response),
        OutcomeTotals {
            delivered: 50,
            failed: 6,
            transformation_errors: 5,
            dropped: 0
        }
    );
    let errors: Vec<(i32, &str, u64, &str)> = response
        .connector_errors
        .iter()
        .map(|g| {
            (
                g.category,
                g.partner_code.as_str(),
                g.count,
                g.sample_message.as_str(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        [
            (
                ErrorCategory::PartnerError as i32,
                "400/190",
                3,
                "Error validating access token"
            ),
            (ErrorCategory::Timeout as i32, "", 2, "no answer within 3s"),
            (
                ErrorCategory::PartnerError as i32,
                "400/100",
                1,
                "Invalid parameter"
            ),
        ],
        "largest first, partner codes apart"
    );
    let transformations: Vec<(&str, &str, u64)> = response
        .transformation_errors
        .iter()
        .map(|g| (g.target_field.as_str(), g.reason.as_str(), g.count))
        .collect();
    assert_eq!(
        transformations,
        [
            ("custom_data.value", "not a number", 4),
            ("event_time", "not a timestamp", 1)
        ]
    );
    assert_eq!(
        response.transformation_errors[0].sample_message,
        "custom_data.value: not a number (\"abc\")"
    );
}

/// Range checks are unit-tested case by case beside the planner
/// (`stats-service/src/ranges.rs`); here, that a bad range and a missing
/// connector reach the caller as INVALID_ARGUMENT naming the field.
async fn invalid_ranges_are_invalid_argument_with_the_reason(backend: Backend) {
    let (_server, _prefix, mut client, t) = start(backend).await;
    let cases = [
        ("time_zone", custom("c", t - 3 * DAY, t, "Mars/Olympus")),
        ("connector_id", preset("", StatsPreset::Last7Days)),
    ];
    for (field, request) in cases {
        let status = client
            .get_connector_stats(with_token(request.clone(), STATS_ADMIN_TOKEN))
            .await
            .expect_err(field);
        assert_eq!(status.code(), Code::InvalidArgument, "{request:?}");
        let fields: Vec<String> = status
            .get_details_bad_request()
            .expect("BadRequest details")
            .field_violations
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(fields, [field], "{request:?}");
        assert!(status.message().contains(field), "{}", status.message());
    }
}

async fn recent_failures_are_the_newest_hundred_paged_and_erased_on_delete(backend: Backend) {
    let (_server, _prefix, mut client, t) = start(backend).await;
    // 130 failures of "c" in three batches (oldest first in each), one of
    // "other"; the first batch is re-sent and must not list twice.
    let mut batches = Vec::new();
    for b in 0..3 {
        let mut batch = batch(
            &format!("failures-{b}"),
            vec![count("c", t, Outcome::Failed, 1)],
        );
        for n in 0..(if b == 2 { 30 } else { 50 }) {
            let event = b * 50 + n;
            batch.failures.push(failed_event(
                "c",
                &format!("e{event}"),
                t - 1000 + event as i64,
            ));
        }
        batches.push(batch);
    }
    batches[0].failures.push(failed_event("other", "o1", t));
    let resent = batches[0].clone();
    report(&mut client, batches).await;
    report(&mut client, vec![resent]).await;

    let listed = recent_failures(&mut client, "c", 30).await;
    let ids: Vec<&str> = listed.iter().map(|f| f.event_id.as_str()).collect();
    assert_eq!(listed.len(), 100, "the newest hundred: {ids:?}");
    assert_eq!(ids[0], "e129", "newest first");
    assert_eq!(ids[99], "e30");
    let first = &listed[0];
    assert_eq!(first.connector_id, "c");
    assert_eq!(first.partner_code, "400/100");
    assert_eq!(first.attempts, 1);
    assert_eq!(first.message, "Invalid parameter");
    assert_eq!(first.at, Some(ts(t - 1000 + 129)));
    let other = recent_failures(&mut client, "other", 10).await;
    assert_eq!(other.len(), 1);

    // Failed events that cannot be listed never cost the batch its counts:
    // an over-long id is cut, one without connector or time is skipped.
    let mut odd = batch("odd-failures", vec![count("odd", t, Outcome::Failed, 3)]);
    odd.failures.push(failed_event("odd", &"é".repeat(200), t));
    odd.failures.push(failed_event("", "no-connector", t));
    odd.failures.push(FailedEvent {
        at: None,
        ..failed_event("odd", "no-time", t)
    });
    report(&mut client, vec![odd]).await;
    let listed = recent_failures(&mut client, "odd", 10).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].event_id, "é".repeat(128), "cut to 256 bytes");
    assert_eq!(
        totals(&stats(&mut client, preset("odd", StatsPreset::Last7Days)).await).failed,
        3
    );

    // Pages hold still while failures arrive between them.
    let pager = client.clone();
    let page = |token: &str| {
        let mut client = pager.clone();
        let request = with_token(
            ListRecentFailuresRequest {
                connector_id: "c".into(),
                page_size: 10,
                page_token: token.to_owned(),
            },
            STATS_ADMIN_TOKEN,
        );
        async move {
            client
                .list_recent_failures(request)
                .await
                .expect("page")
                .into_inner()
        }
    };
    let first_page = page("").await;
    assert_eq!(first_page.failures[9].event_id, "e120");
    let mut more = batch("failures-3", vec![count("c", t, Outcome::Failed, 1)]);
    more.failures.push(failed_event("c", "e130", t));
    report(&mut client, vec![more]).await;
    let second_page = page(&first_page.next_page_token).await;
    assert_eq!(
        second_page.failures[0].event_id, "e119",
        "no repeat, no gap"
    );

    // A page size over the bound and a foreign token are invalid arguments.
    for (page_size, page_token, field) in [(101, "", "page_size"), (10, "junk", "page_token")] {
        let status = client
            .list_recent_failures(with_token(
                ListRecentFailuresRequest {
                    connector_id: "c".into(),
                    page_size,
                    page_token: page_token.into(),
                },
                STATS_ADMIN_TOKEN,
            ))
            .await
            .expect_err("invalid");
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains(field), "{}", status.message());
    }

    client
        .delete_connector_stats(with_token(
            DeleteConnectorStatsRequest {
                connector_id: "c".into(),
            },
            STATS_ADMIN_TOKEN,
        ))
        .await
        .expect("delete");
    assert_eq!(recent_failures(&mut client, "c", 100).await, []);
    // Late failures of the deleted connector are discarded with its counts.
    let mut late = batch("failures-late", vec![count("c", t, Outcome::Failed, 1)]);
    late.failures.push(failed_event("c", "late", t));
    report(&mut client, vec![late]).await;
    assert_eq!(recent_failures(&mut client, "c", 100).await, []);
    assert_eq!(recent_failures(&mut client, "other", 10).await.len(), 1);
}

async fn delete_erases_and_the_tombstone_keeps_late_outcomes_out(backend: Backend) {
    let (_server, prefix, mut client, t) = start(backend).await;
    report(
        &mut client,
        vec![batch(
            "before",
            vec![
                count("gone", t, Outcome::Delivered, 9),
                count("kept", t, Outcome::Delivered, 4),
            ],
        )],
    )
    .await;
    client
        .delete_connector_stats(with_token(
            DeleteConnectorStatsRequest {
                connector_id: "gone".into(),
            },
            STATS_ADMIN_TOKEN,
        ))
        .await
        .expect("delete");
    assert_eq!(
        totals(&stats(&mut client, preset("gone", StatsPreset::Last90Days)).await),
        OutcomeTotals::default()
    );
    // Outcomes still in flight from nodes arrive after the delete: acked, not counted.
    let mut acked = report(
        &mut client,
        vec![
            batch(
                "late",
                vec![
                    count("gone", t, Outcome::Delivered, 5),
                    count("kept", t, Outcome::Delivered, 1),
                ],
            ),
            batch("before", vec![count("gone", t, Outcome::Delivered, 9)]),
        ],
    )
    .await;
    acked.sort();
    assert_eq!(acked, ["before", "late"], "acked, in any order");
    assert_eq!(
        totals(&stats(&mut client, preset("gone", StatsPreset::Last90Days)).await),
        OutcomeTotals::default()
    );
    assert_eq!(
        totals(&stats(&mut client, preset("kept", StatsPreset::Last90Days)).await),
        delivered(5)
    );
    // Deleting again is fine.
    client
        .delete_connector_stats(with_token(
            DeleteConnectorStatsRequest {
                connector_id: "gone".into(),
            },
            STATS_ADMIN_TOKEN,
        ))
        .await
        .expect("idempotent");
    if backend != Backend::Memory {
        let left: Vec<String> = prefix
            .keys()
            .into_iter()
            .filter(|k| k.contains("{gone}"))
            .collect();
        assert_eq!(
            left,
            [format!("{}:{{gone}}:tomb", prefix.0)],
            "only the tombstone remains"
        );
    }
}

async fn each_rpc_requires_its_token(backend: Backend) {
    let (_server, _prefix, mut client, _) = start(backend).await;
    // The feed's node token is not the outcomes token: the stats service
    // never holds it.
    let node_token = e2e_tests::control_plane::NODE_TOKEN;
    for token in [STATS_ADMIN_TOKEN, node_token, "nope"] {
        let request = with_token(futures::stream::iter(vec![batch("b", vec![])]), token);
        let status = client.report_outcomes(request).await.expect_err("refused");
        assert_eq!(status.code(), Code::Unauthenticated, "{token}");
    }
    for token in [OUTCOMES_TOKEN, "nope"] {
        let status = client
            .get_connector_stats(with_token(preset("c", StatsPreset::Last7Days), token))
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::Unauthenticated);
        let status = client
            .delete_connector_stats(with_token(
                DeleteConnectorStatsRequest {
                    connector_id: "c".into(),
                },
                token,
            ))
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::Unauthenticated);
    }
    let status = client
        .get_connector_stats(Request::new(preset("c", StatsPreset::Last7Days)))
        .await
        .expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated);
}

async fn buckets_expire_at_their_end_of_retention(backend: Backend) {
    let prefix = RedisPrefix::new();
    let ttls = MarkerTtls {
        dedupe: Duration::from_secs(1),
        tombstone: Duration::from_secs(1),
        samples: Duration::from_secs(1),
    };
    let counters = match backend {
        Backend::Redis | Backend::RedisCluster => Counters::Redis(
            RedisCounters::connect(
                &backend.redis_url().expect("a Redis backend"),
                &prefix.0,
                ttls,
                backend == Backend::RedisCluster,
            )
            .await
            .expect("redis"),
        ),
        Backend::Memory => Counters::Memory(MemoryCounters::new(ttls)),
    };
    let t = now();
    let write = || ConnectorBatch {
        connector_id: "c".into(),
        failures: Vec::new(),
        writes: vec![
            BucketWrite {
                bucket: "h:2026112917".into(),
                fields: vec![("d".into(), 3)],
                expire_at: t + 1,
            },
            BucketWrite {
                bucket: "d:20261129".into(),
                fields: vec![("d".into(), 3)],
                expire_at: t + 30,
            },
        ],
        samples: vec![],
    };
    let buckets = ["h:2026112917".to_owned(), "d:20261129".to_owned()];
    let apply = |batch_id: &'static str| {
        let counters = counters.clone();
        async move {
            counters
                .apply_batch(batch_id, vec![write()])
                .await
                .expect("apply")
        }
    };
    assert_eq!(apply("b1").await, [Applied::Applied]);
    assert_eq!(apply("b1").await, [Applied::Duplicate]);
    let read = counters.read("c", &buckets).await.expect("read");
    assert_eq!(read[0].get("d"), Some(&3));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(10);
    // The hour bucket goes at its end of retention (1 s), the day bucket
    // stays.
    loop {
        let read = counters.read("c", &buckets).await.expect("read");
        if read[0].is_empty() {
            assert_eq!(read[1].get("d"), Some(&3), "the day bucket lives on");
            break;
        }
        assert!(Instant::now() < deadline, "the hour bucket never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The batch id is forgotten after its TTL too: the same id then counts
    // again (until then it is a duplicate and writes nothing).
    loop {
        match apply("b1").await[..] {
            [Applied::Duplicate] => {}
            [Applied::Applied] => break,
            ref other => panic!("the batch id forgotten: applied, not {other:?}"),
        }
        assert!(
            Instant::now() < deadline,
            "the batch id was never forgotten"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let read = counters.read("c", &buckets).await.expect("read");
    assert_eq!(read[1].get("d"), Some(&6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_is_set_on_every_redis_key() {
    retention_on_every_key(Backend::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_is_set_on_every_redis_key_in_cluster_mode() {
    retention_on_every_key(Backend::RedisCluster).await;
}

/// Every key expires; in cluster mode every key carries the connector's
/// hash tag, on a standalone Redis all but the one batch-id set.
async fn retention_on_every_key(backend: Backend) {
    let (_server, prefix, mut client, t) = start(backend).await;
    let mut with_failure = batch("ttl", vec![count("c", t, Outcome::Delivered, 1)]);
    with_failure.failures.push(failed_event("c", "e1", t));
    report(&mut client, vec![with_failure]).await;
    let mut connection = backend.connection();
    let mut ttls = BTreeMap::new();
    for key in prefix.keys() {
        let ttl: i64 = ::redis::cmd("TTL")
            .arg(&key)
            .query(&mut *connection)
            .expect("ttl");
        if backend == Backend::Redis && key == format!("{}:batches", prefix.0) {
            ttls.insert("batches".to_owned(), ttl);
            continue;
        }
        let after_tag = key.split("{c}:").nth(1).unwrap_or_default();
        let kind = after_tag.split(':').next().unwrap_or_default().to_owned();
        ttls.insert(kind, ttl);
        assert!(key.contains("{c}"), "hash tag on {key}");
    }
    let days = |n: i64| n * DAY;
    // Buckets expire their retention after their start (the hour, the UTC day).
    assert!(
        (days(100) - HOUR - 5..=days(100)).contains(&ttls["h"]),
        "{ttls:?}"
    );
    assert!(
        (days(400) - DAY - 5..=days(400)).contains(&ttls["d"]),
        "{ttls:?}"
    );
    assert!(
        (days(7) - 5..=days(7)).contains(&ttls["batches"]),
        "{ttls:?}"
    );
    // Recent failures live as long as the day buckets, from their last write.
    for kind in ["failures", "failures-pushed"] {
        assert!(
            (days(400) - 5..=days(400)).contains(&ttls[kind]),
            "{kind}: {ttls:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_made_while_the_stats_service_is_down_is_carried_out_when_it_returns() {
    let prefix = RedisPrefix::new();
    let stats_service = StatsHandle::start(
        Backend::Redis,
        &prefix,
        "127.0.0.1:0".parse().expect("addr"),
    )
    .await;
    let stats_addr = stats_service.addr;
    let control_plane = ControlPlaneHandle::start_with(
        TestStore::new(Db::Postgres).await,
        Options {
            stats_url: Some(stats_service.url()),
            ..Options::default()
        },
    )
    .await;
    let mut admin = control_plane.admin().await;
    let doomed = admin
        .create_connector(create(meta_connector("ws-1", "Meta")))
        .await
        .expect("create")
        .into_inner();
    let mut stats_client = StatsServiceClient::new(stats_service.channel().await);
    let t = now();
    report(
        &mut stats_client,
        vec![batch(
            "b",
            vec![count(&doomed.id, t, Outcome::Delivered, 42)],
        )],
    )
    .await;
    assert_eq!(
        totals(
            &stats(
                &mut stats_client,
                preset(&doomed.id, StatsPreset::Last7Days)
            )
            .await
        ),
        delivered(42)
    );

    stats_service.stop().await;
    // In its place, a listener that hangs up on every connection: the
    // control plane's erase attempts reach it and fail.
    let refusing = tokio::net::TcpListener::bind(stats_addr)
        .await
        .expect("the stats address is free again");
    admin
        .delete_connector(DeleteConnectorRequest {
            id: doomed.id.clone(),
        })
        .await
        .expect("delete works while the stats service is down");
    let (hung_up, _) = tokio::time::timeout(Duration::from_secs(10), refusing.accept())
        .await
        .expect("the eraser tries at once")
        .expect("a connection");
    drop(hung_up);
    drop(refusing);
    let store = control_plane.store().await;
    assert_eq!(
        store.pending_stats_erasures(10).await.expect("pending"),
        std::slice::from_ref(&doomed.id),
        "kept pending"
    );

    let back = StatsHandle::start(Backend::Redis, &prefix, stats_addr).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while !store
        .pending_stats_erasures(10)
        .await
        .expect("pending")
        .is_empty()
    {
        assert!(Instant::now() < deadline, "the erase was never retried");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut stats_client = StatsServiceClient::new(back.channel().await);
    assert_eq!(
        totals(
            &stats(
                &mut stats_client,
                preset(&doomed.id, StatsPreset::Last7Days)
            )
            .await
        ),
        OutcomeTotals::default(),
        "statistics erased"
    );
    store.close().await;
}
