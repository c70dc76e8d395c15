//! Stats benchmark: outcome batches and counter increments per second into
//! the local Redis through the real gRPC intake, for a fleet of nodes
//! reporting the same connectors and for batches that share none;
//! GetConnectorStats latency for 90 days over many connectors' history,
//! idle and during each intake; Redis memory per connector-day; and
//! `redis-benchmark` on the same Redis as the ceiling.
//!
//! cargo bench -p e2e-tests --bench stats -- [connectors] [batches]
//! (defaults 10000 16000; `--intake-only` stops after the intakes and
//! `--workload=fleet|spread` runs one of them, for profiling; needs Redis
//! on TEST_REDIS_URL or 127.0.0.1:6379, and redis-benchmark on PATH for
//! the ceiling)

#![allow(clippy::print_stdout)] // the report on stdout is what a benchmark is for

use std::time::{Duration, Instant};

// The allocator of the stats-service binary, which this process stands in
// for (the node streams share it: see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use e2e_tests::bench::{arg, percentile};
use e2e_tests::stats::{
    Backend, OUTCOMES_TOKEN, RedisPrefix, STATS_ADMIN_TOKEN, StatsHandle, redis_url,
};
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
/// Data-plane nodes reporting, each on its own stream.
const NODES: usize = 16;
/// How many batches any node may be ahead of the slowest one.
const WINDOW: usize = 4;
const COUNTS_PER_BATCH: usize = 100;
const CONNECTORS_PER_BATCH: usize = 20;

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

/// Which connectors a batch reports. Batch `b` comes from node `b % NODES`;
/// with a small window each, the nodes' `r`-th batches are sent at about
/// the same time.
#[derive(Debug, Clone, Copy)]
enum Workload {
    /// Nodes behind one Service, as deployed: events of any connector reach
    /// any node, so each round the nodes report the same 20 connectors
    /// (another 20 of the 10,000 each round). Batches written together
    /// share connectors, and group commit merges them.
    Fleet { connectors: usize },
    /// Every batch has its own 20 connectors: batches written together
    /// rarely share one, so group commit merges little. The worst case.
    Spread { connectors: usize },
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Self::Fleet { .. } => "fleet",
            Self::Spread { .. } => "spread",
        }
    }

    /// The connector of count `i` (of [`COUNTS_PER_BATCH`]) in batch `b`.
    fn connector(self, b: usize, i: usize) -> String {
        let (seed, connectors) = match self {
            Self::Fleet { connectors } => (b / NODES, connectors),
            Self::Spread { connectors } => (b, connectors),
        };
        // 20 distinct connectors (499 x 19 < 10,000) from a start that
        // moves across all of them from one seed to the next.
        let slot = (seed + i) % CONNECTORS_PER_BATCH;
        format!("live-{}", (seed * 7919 + slot * 499) % connectors)
    }
}

/// A node's batch: counts for 20 connectors, a realistic mix of outcomes.
fn batch(workload: Workload, id: String, seed: usize, at: i64) -> OutcomeBatch {
    let counts = (0..COUNTS_PER_BATCH)
        .map(|i| {
            let connector = workload.connector(seed, i);
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
        failures: Vec::new(),
    }
}

/// What one intake run measured.
struct Intake {
    /// Counter increments the batches carry (split per connector, hour and
    /// day bucket and field), applied per second.
    increments_per_second: f64,
    /// HINCRBY calls Redis ran per second (fewer when batches merge).
    hincrby_per_second: f64,
}

/// `batches` outcome batches of `workload` through `ReportOutcomes` on
/// [`NODES`] streams; every ack awaited.
async fn intake(
    client: &StatsServiceClient<tonic::transport::Channel>,
    connection: &mut redis::Connection,
    workload: Workload,
    batches: usize,
    name: &str,
    running: &std::sync::atomic::AtomicBool,
) -> Intake {
    let t = now();
    let all: Vec<OutcomeBatch> = (0..batches)
        .map(|b| batch(workload, format!("{name}-b{b}"), b, t))
        .collect();
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
    let (redis_cpu_before, own_cpu_before, hincrby_before, scripts_before) = (
        redis_cpu_seconds(connection),
        own_cpu_seconds(),
        redis_command_stats(connection, "hincrby").0,
        redis_command_stats(connection, "evalsha"),
    );
    // Each stream's batches are set aside before the clock starts, so the
    // timing is the service's, not the copying of test data.
    let mut streams: Vec<Vec<OutcomeBatch>> = vec![Vec::new(); NODES];
    for (b, batch) in all.into_iter().enumerate() {
        streams[b % NODES].push(batch);
    }
    let started = Instant::now();
    running.store(true, std::sync::atomic::Ordering::Release);
    let fleet = std::sync::Arc::new(Fleet {
        lockstep: matches!(workload, Workload::Fleet { .. }),
        acked: (0..NODES).map(|_| 0.into()).collect(),
        progress: tokio::sync::Notify::new(),
    });
    let acked: usize = futures::future::join_all(
        streams
            .into_iter()
            .enumerate()
            .map(|(index, batches)| node(client.clone(), fleet.clone(), index, batches)),
    )
    .await
    .into_iter()
    .sum();
    let elapsed = started.elapsed().as_secs_f64();
    running.store(false, std::sync::atomic::Ordering::Release);
    assert_eq!(acked, batches);
    let hincrby = redis_command_stats(connection, "hincrby").0 - hincrby_before;
    let scripts = redis_command_stats(connection, "evalsha");
    let (scripts, script_usec) = (scripts.0 - scripts_before.0, scripts.1 - scripts_before.1);
    let redis_cpu = redis_cpu_seconds(connection) - redis_cpu_before;
    let own_cpu = own_cpu_seconds() - own_cpu_before;
    let result = Intake {
        increments_per_second: increments as f64 / elapsed,
        hincrby_per_second: hincrby as f64 / elapsed,
    };
    println!(
        "intake, {name}: {batches} batches in {elapsed:.2} s = {:.0} batches/s, {:.0} counts/s, {:.0} counter increments/s; Redis ran {hincrby} HINCRBY for {increments} increments ({:.0}/s)",
        batches as f64 / elapsed,
        (batches * COUNTS_PER_BATCH) as f64 / elapsed,
        result.increments_per_second,
        result.hincrby_per_second,
    );
    println!(
        "intake CPU, {name}: Redis {redis_cpu:.2} s ({:.0}% of one core), stats service + client {own_cpu:.2} s ({:.0}% of one core), over {elapsed:.2} s on 2 cores",
        100.0 * redis_cpu / elapsed,
        100.0 * own_cpu / elapsed
    );
    println!(
        "intake scripts, {name}: {scripts} ({:.1} batches each), {:.0} µs of Redis each = {:.1} µs per batch",
        batches as f64 / scripts.max(1) as f64,
        script_usec as f64 / scripts.max(1) as f64,
        script_usec as f64 / batches as f64,
    );
    result
}

/// `LAST_90_DAYS` for history connectors, one call at a time, while
/// `running` is true, or `calls` of them. Returns the sorted latencies.
async fn read_90_days(
    mut client: StatsServiceClient<tonic::transport::Channel>,
    connectors: usize,
    calls: Option<usize>,
    running: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<Duration> {
    use std::sync::atomic::Ordering;
    // During an intake: from when its clock starts until it ends.
    while calls.is_none() && !running.load(Ordering::Acquire) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut latencies = Vec::new();
    for i in 0.. {
        if calls.is_some_and(|n| i >= n) || !running.load(Ordering::Acquire) {
            break;
        }
        let request = GetConnectorStatsRequest {
            connector_id: format!("hist-{}", (i * 7919) % connectors),
            preset: StatsPreset::Last90Days as i32,
            ..Default::default()
        };
        let started = Instant::now();
        let response = client
            .get_connector_stats(with_token(request, STATS_ADMIN_TOKEN))
            .await
            .expect("stats")
            .into_inner();
        latencies.push(started.elapsed());
        assert_eq!(response.totals.expect("totals").delivered, 9000);
    }
    latencies.sort_unstable();
    latencies
}

fn print_latencies(what: &str, sorted: Vec<Duration>) {
    println!(
        "{what}: {} calls, p50 {:.2?}  p99 {:.2?}  max {:.2?}",
        sorted.len(),
        percentile(&sorted, 0.5),
        percentile(&sorted, 0.99),
        sorted[sorted.len() - 1]
    );
}

/// How far each node has got, so none runs more than [`WINDOW`] batches
/// ahead of the slowest: real nodes flush on the same clock, so their
/// `r`-th batches cover the same second and arrive together.
struct Fleet {
    /// Off for [`Workload::Spread`]: nodes that share no connectors gain
    /// nothing from arriving together, and each sends as fast as it can.
    lockstep: bool,
    acked: Vec<std::sync::atomic::AtomicUsize>,
    progress: tokio::sync::Notify,
}

impl Fleet {
    fn slowest(&self) -> usize {
        self.acked
            .iter()
            .map(|a| a.load(std::sync::atomic::Ordering::Acquire))
            .min()
            .unwrap_or(0)
    }

    /// Waits until batch `round` may be sent.
    async fn may_send(&self, round: usize) {
        if !self.lockstep {
            return;
        }
        loop {
            let progressed = self.progress.notified();
            if self.slowest() + WINDOW > round {
                return;
            }
            progressed.await;
        }
    }
}

/// Node `index`'s stream: its `batches` sent in rounds kept together by
/// `fleet`; returns how many were acknowledged.
async fn node(
    mut client: StatsServiceClient<tonic::transport::Channel>,
    fleet: std::sync::Arc<Fleet>,
    index: usize,
    batches: Vec<OutcomeBatch>,
) -> usize {
    let total = batches.len();
    let (outbound, queue) = tokio::sync::mpsc::channel(WINDOW);
    let request = with_token(
        tokio_stream::wrappers::ReceiverStream::new(queue),
        OUTCOMES_TOKEN,
    );
    let send = async {
        for (round, batch) in batches.into_iter().enumerate() {
            fleet.may_send(round).await;
            outbound.send(batch).await.expect("queue");
        }
    };
    let receive = async {
        let mut acks = client
            .report_outcomes(request)
            .await
            .expect("report")
            .into_inner();
        for acked in 1..=total {
            acks.message().await.expect("ack").expect("stream open");
            fleet.acked[index].store(acked, std::sync::atomic::Ordering::Release);
            fleet.progress.notify_waiters();
        }
        total
    };
    tokio::join!(send, receive).1
}

/// Calls and microseconds Redis has spent in `command` (a script's calls
/// count for the script and for each command it runs).
fn redis_command_stats(connection: &mut redis::Connection, command: &str) -> (u64, u64) {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(connection)
        .expect("info");
    let field = |line: &str, name: &str| -> u64 {
        line.split(',')
            .find_map(|part| part.split_once('=').filter(|(key, _)| key.ends_with(name)))
            .and_then(|(_, value)| value.parse().ok())
            .unwrap_or(0)
    };
    info.lines()
        .find(|line| line.starts_with(&format!("cmdstat_{command}:")))
        .map_or((0, 0), |line| (field(line, "calls"), field(line, "usec")))
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
    let batches = arg(2, 16_000);
    let prefix = RedisPrefix::new();
    let server = StatsHandle::start(
        Backend::Redis,
        &prefix,
        "127.0.0.1:0".parse().expect("addr"),
    )
    .await;
    let client = StatsServiceClient::new(server.channel().await);
    println!(
        "stats: Redis at {}, {NODES} node streams, {COUNTS_PER_BATCH} counts per batch",
        redis_url()
    );

    // 1. Intake throughput through gRPC, for both workloads.
    let redis_client = redis::Client::open(redis_url()).expect("url");
    let mut connection = redis_client.get_connection().expect("redis");
    let mut intakes = Vec::new();
    // `--workload=fleet` or `--workload=spread` runs only that one.
    let only = std::env::args().find_map(|a| a.strip_prefix("--workload=").map(str::to_owned));
    for workload in [
        Workload::Fleet { connectors },
        Workload::Spread { connectors },
    ] {
        if only.as_deref().is_some_and(|name| name != workload.name()) {
            continue;
        }
        intakes.push((
            workload,
            intake(
                &client,
                &mut connection,
                workload,
                batches,
                workload.name(),
                &std::sync::atomic::AtomicBool::new(false),
            )
            .await,
        ));
    }

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
    let t = now();
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
                    failures: Vec::new(),
                };
                for part in stats_service::intake::split(&history, t, retention()).expect("valid") {
                    counters
                        .apply(&history.batch_id, &part)
                        .await
                        .expect("apply");
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

    // 3. GetConnectorStats for 90 days: alone, then during each intake
    // again (now with the history's keys in Redis).
    let on = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let reads = read_90_days(client.clone(), connectors, Some(2000), on).await;
    print_latencies(
        "GetConnectorStats LAST_90_DAYS (gRPC round trip, 90 keys)",
        reads,
    );
    for workload in [
        Workload::Fleet { connectors },
        Workload::Spread { connectors },
    ] {
        let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = tokio::spawn(read_90_days(
            client.clone(),
            connectors,
            None,
            running.clone(),
        ));
        let name = format!("{}-again", workload.name());
        intake(&client, &mut connection, workload, batches, &name, &running).await;
        let reads = reader.await.expect("reader");
        print_latencies(&format!("  the same during the {name} intake"), reads);
    }

    // 4. The ceiling.
    match redis_benchmark(&prefix.0) {
        Some(rate) => {
            println!("redis-benchmark HINCRBY -P 64: {rate:.0} ops/s");
            for (workload, result) in &intakes {
                println!(
                    "  {}: counter increments reach {:.2} of it; HINCRBY run by Redis {:.2}",
                    workload.name(),
                    result.increments_per_second / rate,
                    result.hincrby_per_second / rate
                );
            }
        }
        None => println!("redis-benchmark not found: no ceiling measured"),
    }
    drop(server);
}
