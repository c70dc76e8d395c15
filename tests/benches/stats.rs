//! Stats benchmark: outcome batches and counter increments per second into
//! the local Redis through the real gRPC intake, GetConnectorStats latency
//! for 90 days over many connectors' history, Redis memory per
//! connector-day, and `redis-benchmark` on the same Redis as the ceiling.
//!
//! cargo bench -p e2e-tests --bench stats -- [connectors] [batches]
//! (defaults 10000 4000; `--intake-only` stops after the intake, for
//! profiling; needs Redis on TEST_REDIS_URL or 127.0.0.1:6379,
//! and redis-benchmark on PATH for the ceiling)

#![allow(clippy::print_stdout)] // the report on stdout is what a benchmark is for

use std::time::{Duration, Instant};

use e2e_tests::bench::{arg, percentile};
use e2e_tests::control_plane::ADMIN_TOKEN;
use e2e_tests::stats::{Backend, RedisPrefix, StatsHandle, redis_url, report};
use e2e_tests::with_token;
use eventconnectors_proto::v1::stats_service_client::StatsServiceClient;
use eventconnectors_proto::v1::{
    ErrorCategory, GetConnectorStatsRequest, Outcome, OutcomeBatch, OutcomeCount, StatsPreset,
};
use futures::StreamExt;
use stats_service::counters::{Counters, MarkerTtls, RedisCounters};
use stats_service::ranges::Retention;

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;
const STREAMS: usize = 4;
const COUNTS_PER_BATCH: usize = 100;

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn retention() -> Retention {
    let days = |n: u64| Duration::from_secs(n * 86_400);
    Retention {
        hours: days(100),
        days: days(400),
        max_span: days(400),
    }
}

/// A node's batch: counts for 20 connectors, a realistic mix of outcomes.
fn batch(id: String, seed: usize, at: i64) -> OutcomeBatch {
    let counts = (0..COUNTS_PER_BATCH)
        .map(|i| {
            let connector = format!("live-{}", (seed + i) % 20);
            let (outcome, category, code, field) = match i % 5 {
                0..=2 => (Outcome::Delivered, ErrorCategory::Unspecified, "", ""),
                3 => (Outcome::Failed, ErrorCategory::PartnerError, "400/190", ""),
                _ => (
                    Outcome::TransformationError,
                    ErrorCategory::Unspecified,
                    "",
                    "custom_data.value",
                ),
            };
            OutcomeCount {
                connector_id: connector,
                bucket_start: Some(prost_types::Timestamp {
                    seconds: at - at.rem_euclid(HOUR),
                    nanos: 0,
                }),
                outcome: outcome as i32,
                category: category as i32,
                partner_code: code.to_owned(),
                target_field: field.to_owned(),
                reason: if field.is_empty() {
                    String::new()
                } else {
                    "not a number".to_owned()
                },
                count: 1 + (i % 7) as u64,
                sample_message: String::new(),
            }
        })
        .collect();
    OutcomeBatch {
        batch_id: id,
        node_id: "bench".to_owned(),
        counts,
    }
}

fn redis_used_memory(connection: &mut redis::Connection) -> i64 {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query(connection)
        .expect("info");
    info.lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("used_memory")
}

fn redis_cpu_seconds(connection: &mut redis::Connection) -> f64 {
    let info: String = redis::cmd("INFO")
        .arg("cpu")
        .query(connection)
        .expect("info");
    info.lines()
        .filter_map(|line| {
            line.strip_prefix("used_cpu_user:")
                .or_else(|| line.strip_prefix("used_cpu_sys:"))
        })
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .sum()
}

/// CPU time of this process (the stats service runs in it), from /proc.
fn own_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn redis_benchmark(prefix: &str) -> Option<f64> {
    let output = std::process::Command::new("redis-benchmark")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            "6379",
            "-n",
            "2000000",
            "-P",
            "64",
            "-q",
        ])
        .args(["HINCRBY", &format!("{prefix}:redis-benchmark"), "f", "1"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    // "HINCRBY ...: 1234567.89 requests per second, p50=..."
    let line = text
        .lines()
        .rev()
        .find(|l| l.contains("requests per second"))?;
    let rate = line.rsplit_once(": ")?.1.split_whitespace().next()?;
    rate.parse().ok()
}

#[tokio::main]
async fn main() {
    let connectors = arg(1, 10_000);
    let batches = arg(2, 4_000);
    let prefix = RedisPrefix::new();
    let server = StatsHandle::start(
        Backend::Redis,
        &prefix,
        "127.0.0.1:0".parse().expect("addr"),
    )
    .await;
    let client = StatsServiceClient::new(server.channel().await);
    println!(
        "stats: Redis at {}, {STREAMS} node streams, {COUNTS_PER_BATCH} counts per batch",
        redis_url()
    );

    // 1. Intake throughput through gRPC.
    let t = now();
    let all: Vec<OutcomeBatch> = (0..batches).map(|b| batch(format!("b{b}"), b, t)).collect();
    let increments: usize = all
        .iter()
        .map(|b| {
            stats_service::intake::split(b, t, retention())
                .expect("valid")
                .iter()
                .flat_map(|part| part.writes.iter().map(|w| w.fields.len()))
                .sum::<usize>()
        })
        .sum();
    let redis_client = redis::Client::open(redis_url()).expect("url");
    let mut connection = redis_client.get_connection().expect("redis");
    let (redis_cpu_before, own_cpu_before) =
        (redis_cpu_seconds(&mut connection), own_cpu_seconds());
    // Each stream's batches are set aside before the clock starts, so the
    // timing is the service's, not the copying of test data.
    let per_stream = batches.div_ceil(STREAMS);
    let mut streams: Vec<Vec<OutcomeBatch>> = Vec::new();
    let mut rest = all.into_iter().peekable();
    while rest.peek().is_some() {
        streams.push(rest.by_ref().take(per_stream).collect());
    }
    let started = Instant::now();
    let acked: usize = futures::future::join_all(streams.into_iter().map(|chunk| {
        let mut client = client.clone();
        async move { report(&mut client, chunk).await.len() }
    }))
    .await
    .into_iter()
    .sum();
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(acked, batches);
    let increments_per_second = increments as f64 / elapsed;
    let redis_cpu = redis_cpu_seconds(&mut connection) - redis_cpu_before;
    let own_cpu = own_cpu_seconds() - own_cpu_before;
    println!(
        "intake: {batches} batches in {elapsed:.2} s = {:.0} batches/s, {:.0} counts/s, {:.0} counter increments/s ({increments} HINCRBY)",
        batches as f64 / elapsed,
        (batches * COUNTS_PER_BATCH) as f64 / elapsed,
        increments_per_second,
    );
    println!(
        "intake CPU: Redis {redis_cpu:.2} s ({:.0}% of one core), stats service + client {own_cpu:.2} s ({:.0}% of one core), over {elapsed:.2} s on 2 cores",
        100.0 * redis_cpu / elapsed,
        100.0 * own_cpu / elapsed
    );

    if std::env::args().any(|a| a == "--intake-only") {
        return; // for profiling the intake alone
    }

    // 2. History: every connector active one hour a day for 90 days.
    let before = redis_used_memory(&mut connection);
    let ttls = MarkerTtls {
        dedupe: Duration::from_secs(7 * 86_400),
        tombstone: Duration::from_secs(30 * 86_400),
        samples: Duration::from_secs(400 * 86_400),
    };
    let counters = Counters::Redis(
        RedisCounters::connect(&redis_url(), &prefix.0, ttls, false)
            .await
            .expect("redis"),
    );
    let started = Instant::now();
    let today = t - t.rem_euclid(DAY);
    futures::stream::iter(0..connectors)
        .map(|c| {
            let counters = counters.clone();
            async move {
                let history = OutcomeBatch {
                    batch_id: format!("history-{c}"),
                    node_id: "bench".to_owned(),
                    counts: (0..90)
                        .flat_map(|day| {
                            let at = today - day * DAY + (c as i64 % 24) * HOUR;
                            let bucket_start = Some(prost_types::Timestamp {
                                seconds: at,
                                nanos: 0,
                            });
                            [
                                OutcomeCount {
                                    connector_id: format!("hist-{c}"),
                                    bucket_start,
                                    outcome: Outcome::Delivered as i32,
                                    count: 100,
                                    ..Default::default()
                                },
                                OutcomeCount {
                                    connector_id: format!("hist-{c}"),
                                    bucket_start,
                                    outcome: Outcome::Failed as i32,
                                    category: ErrorCategory::Timeout as i32,
                                    count: 2,
                                    ..Default::default()
                                },
                            ]
                        })
                        .collect(),
                };
                for part in stats_service::intake::split(&history, t, retention()).expect("valid") {
                    counters.apply(&part).await.expect("apply");
                }
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<()>>()
        .await;
    let after = redis_used_memory(&mut connection);
    println!(
        "history: {connectors} connectors x 90 days written in {:.1?}; Redis memory {:.1} MiB = {} bytes per connector-day (one active hour a day: an hour and a day bucket)",
        started.elapsed(),
        (after - before) as f64 / 1_048_576.0,
        (after - before) / (connectors as i64 * 90)
    );

    // 3. GetConnectorStats for 90 days.
    let mut client = client.clone();
    let mut latencies = Vec::new();
    for i in 0..2000 {
        let request = GetConnectorStatsRequest {
            connector_id: format!("hist-{}", (i * 7919) % connectors),
            preset: StatsPreset::Last90Days as i32,
            ..Default::default()
        };
        let started = Instant::now();
        let response = client
            .get_connector_stats(with_token(request, ADMIN_TOKEN))
            .await
            .expect("stats")
            .into_inner();
        latencies.push(started.elapsed());
        assert_eq!(response.totals.expect("totals").delivered, 9000);
    }
    latencies.sort_unstable();
    println!(
        "GetConnectorStats LAST_90_DAYS (gRPC round trip, 90 keys): p50 {:.2?}  p99 {:.2?}  max {:.2?}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1]
    );

    // 4. The ceiling.
    match redis_benchmark(&prefix.0) {
        Some(rate) => println!(
            "redis-benchmark HINCRBY -P 64: {rate:.0} ops/s; counter increments reach {:.2} of it",
            increments_per_second / rate
        ),
        None => println!("redis-benchmark not found: no ceiling measured"),
    }
    drop(server);
}
