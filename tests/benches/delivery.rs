//! Delivery benchmark: one data-plane node, fed over real gRPC, delivering
//! to fake partners on loopback; beside it, in the same run, a bare hyper
//! client posting the same kind of bodies to the same fake partner (the
//! ceiling). The node, the fake partners and the load generator each run on
//! their own named threads, so CPU time is read per component from
//! /proc/self/task.
//!
//! cargo bench -p e2e-tests --bench delivery -- [batched events] [webhook events]
//! (defaults 400000 40000)

#![allow(clippy::print_stdout)] // the report on stdout is what a benchmark is for

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use e2e_tests::bench::{
    BATCH, arg, cpu_of, create_connector, ingest_fully, meta, percentile, raw_event, runtime,
    send_all, wait_events,
};
use e2e_tests::control_plane::{ControlPlaneHandle, Db};
use e2e_tests::fixtures::webhook_connector;
use e2e_tests::node::{INGEST_TOKEN, IngestClient, NodeHandle};
use e2e_tests::partners::{FakePartner, MetaCapi, Reply, Webhook};
use e2e_tests::with_token;
use eventconnectors_proto::v1::{Connector, IngestRequest};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

const CONCURRENCY: usize = 16;
const LINGER_MS: u64 = 5;

/// Resident memory of the process, in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("statm");
    let pages: u64 = statm
        .split(' ')
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn webhook(workspace: &str, url: &str) -> Connector {
    webhook_connector(workspace, &format!("hook {url}"), url)
}

/// The ceiling: `bodies` POSTed to `url` by a bare hyper client, `CONCURRENCY`
/// at a time; returns the elapsed time.
async fn ceiling(url: &str, bodies: Vec<Bytes>) -> Duration {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(CONCURRENCY)
        .build_http();
    let uri: hyper::Uri = url.parse().expect("uri");
    let queue = Arc::new(std::sync::Mutex::new(bodies));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, uri, queue) = (client.clone(), uri.clone(), Arc::clone(&queue));
        tasks.push(tokio::spawn(async move {
            loop {
                let Some(body) = queue.lock().expect("queue").pop() else {
                    return;
                };
                let request = hyper::Request::post(uri.clone())
                    .header("content-type", "application/json")
                    .body(Full::new(body))
                    .expect("request");
                let response = client.request(request).await.expect("ceiling request");
                assert!(response.status().is_success(), "{}", response.status());
                http_body_util::BodyExt::collect(response.into_body())
                    .await
                    .expect("body");
            }
        }));
    }
    for task in tasks {
        task.await.expect("ceiling task");
    }
    started.elapsed()
}

/// The Meta request bodies the node builds for `events`, 1,000 per body.
fn meta_bodies(events: &[String]) -> Vec<Bytes> {
    let connector = eventconnectors_proto::v1::ConnectorConfig {
        id: "ceiling".into(),
        workspace_id: "ceiling".into(),
        partner: "meta_capi".into(),
        settings: [("pixel_id".to_owned(), "123456789012345".to_owned())].into(),
        secrets: [("access_token".to_owned(), "EAAB-token".to_owned())].into(),
        mappings: meta("x").mappings,
        ..Default::default()
    };
    let transformer = partners::transform::Transformer::new(&connector).expect("compiles");
    let meta = partners::partner("meta_capi").expect("meta");
    let prepared: Vec<_> = events
        .iter()
        .map(|text| {
            let raw = data_plane::event::parse(text, 1 << 20, None).expect("event");
            let fields = transformer.apply(&raw.body).expect("transforms");
            meta.adapter.prepare(&connector, raw.id(), fields)
        })
        .collect();
    let base_url = meta.default_base_url.expect("a base URL");
    meta.adapter
        .requests(&connector, &prepared, base_url, 0)
        .into_iter()
        .map(|request| request.body)
        .collect()
}

struct Throughput {
    events_per_second: f64,
    node_cpu_per_event: Duration,
    ceiling_per_second: f64,
}

/// Ingest-to-partner latencies of events sent at `rate` per second for
/// `seconds` to `workspace`, as the recorded `partner` saw them.
async fn paced_latencies(
    client: &IngestClient,
    partner: &FakePartner,
    workspace: &str,
    rate: usize,
    seconds: u64,
) -> Vec<Duration> {
    // Producers send small batches often: one every millisecond.
    let tick = Duration::from_millis(1);
    let per_tick = (rate / 1000).max(1);
    let ticks = seconds * 1000;
    let before = partner.event_count();
    let mut sent_at: Vec<Instant> = Vec::new();
    let mut next = tokio::time::Instant::now();
    let mut client = client.clone();
    for t in 0..ticks {
        next += tick;
        let events: Vec<String> = (0..per_tick)
            .map(|i| {
                raw_event(
                    &format!("{workspace}-{}", t as usize * per_tick + i),
                    workspace,
                )
            })
            .collect();
        sent_at.extend(std::iter::repeat_n(Instant::now(), per_tick));
        ingest_fully(&mut client, events).await;
        tokio::time::sleep_until(next).await;
    }
    wait_events(
        partner,
        before + sent_at.len() as u64,
        Duration::from_secs(60),
    )
    .await;
    let prefix = format!("{workspace}-");
    let mut latencies = Vec::with_capacity(sent_at.len());
    for request in partner.requests() {
        let events = request.body["data"].as_array().cloned().unwrap_or_default();
        for event in events {
            let Some(n) = event["event_id"]
                .as_str()
                .and_then(|id| id.strip_prefix(&prefix))
                .and_then(|n| n.parse::<usize>().ok())
            else {
                continue;
            };
            latencies.push(request.at.duration_since(sent_at[n]));
        }
    }
    latencies.sort();
    latencies
}

fn main() {
    let batched = arg(1, 400_000);
    let unbatched = arg(2, 40_000);
    let loadgen = runtime("loadgen", 2);
    let node_rt = runtime("node", 2);
    let partner_rt = runtime("partner", 2);

    let meta_partner = partner_rt.block_on(FakePartner::start_unrecorded(&MetaCapi));
    let hook_partner = partner_rt.block_on(FakePartner::start_unrecorded(&Webhook));
    let recorded_meta = partner_rt.block_on(FakePartner::start(&MetaCapi));
    let stuck_partner = partner_rt.block_on(FakePartner::start(&Webhook));
    stuck_partner.set_default(Reply::Delay(
        Duration::from_secs(600),
        Box::new(Reply::Accept),
    ));

    let control_plane = loadgen.block_on(ControlPlaneHandle::start(Db::Sqlite));
    let meta_base = meta_partner.base_url();
    let linger = format!("{LINGER_MS}ms");
    let concurrency = CONCURRENCY.to_string();
    let node = node_rt.block_on(NodeHandle::start_with(
        "bench-node",
        &[control_plane.url()],
        &[
            "--meta-base-url",
            &meta_base,
            "--linger",
            &linger,
            "--connector-concurrency",
            &concurrency,
            "--connector-queue-capacity",
            "200000",
            // The memory phase queues 100,000 events for one workspace.
            "--node-queue-bytes",
            "1GiB",
            "--workspace-queue-share",
            "1",
        ],
    ));
    let create_on_node = |connector: Connector| -> String {
        loadgen.block_on(create_connector(&control_plane, &[&node], connector))
    };
    create_on_node(meta("batched"));
    create_on_node(webhook("unbatched", &hook_partner.url()));
    let client = loadgen.block_on(node.ingest_client());

    // 0. Memory per queued event, first, while the process is fresh:
    // 100,000 events for a webhook whose partner holds every request.
    let held = create_on_node(webhook("held", &stuck_partner.url()));
    let id_of_held = held.clone();
    // Each request is built just before it is sent and freed after, so
    // the loader holds one batch at a time and the difference is what the
    // node holds.
    let before = rss();
    loadgen.block_on(async {
        let mut client = client.clone();
        for batch in 0..100_000 / BATCH {
            let events = (0..BATCH)
                .map(|i| raw_event(&format!("h{}", batch * BATCH + i), "held"))
                .collect();
            let request = IngestRequest {
                events,
                sequence: 0,
            };
            let reply = client
                .ingest(with_token(request, INGEST_TOKEN))
                .await
                .expect("ingest")
                .into_inner();
            assert!(reply.rejected.is_empty(), "room for every held event");
        }
    });
    let queued = node.queued();
    let after = rss();
    loadgen.block_on(async {
        control_plane
            .admin()
            .await
            .delete_connector(eventconnectors_proto::v1::DeleteConnectorRequest { id: held })
            .await
            .expect("delete");
        node.wait_for_lane(&id_of_held, false, Duration::from_secs(10))
            .await;
    });

    // 1. Batched partner (Meta CAPI): throughput and CPU per event.
    let events: Vec<String> = (0..batched)
        .map(|i| raw_event(&format!("b{i}"), "batched"))
        .collect();
    let bodies = meta_bodies(&events[..batched.min(100_000)]);
    let ceiling_events = batched.min(100_000);
    let cpu_before = cpu_of("node");
    let started = Instant::now();
    loadgen.block_on(async {
        send_all(std::slice::from_ref(&client), events).await;
        wait_events(&meta_partner, batched as u64, Duration::from_secs(300)).await;
    });
    let elapsed = started.elapsed();
    let node_cpu = cpu_of("node") - cpu_before;
    let meta_url = format!("{meta_base}/v21.0/123456789012345/events?access_token=EAAB-token");
    let ceiling_took = loadgen.block_on(ceiling(&meta_url, bodies));
    let batched_run = Throughput {
        events_per_second: batched as f64 / elapsed.as_secs_f64(),
        node_cpu_per_event: Duration::from_secs_f64(node_cpu / batched as f64),
        ceiling_per_second: ceiling_events as f64 / ceiling_took.as_secs_f64(),
    };

    // 2. Unbatched webhook: one request per event.
    let events: Vec<String> = (0..unbatched)
        .map(|i| raw_event(&format!("w{i}"), "unbatched"))
        .collect();
    let bodies: Vec<Bytes> = events.iter().map(|e| Bytes::from(e.clone())).collect();
    let cpu_before = cpu_of("node");
    let started = Instant::now();
    loadgen.block_on(async {
        send_all(std::slice::from_ref(&client), events).await;
        wait_events(&hook_partner, unbatched as u64, Duration::from_secs(300)).await;
    });
    let elapsed = started.elapsed();
    let node_cpu = cpu_of("node") - cpu_before;
    let ceiling_took = loadgen.block_on(ceiling(&hook_partner.url(), bodies));
    let hook = Throughput {
        events_per_second: unbatched as f64 / elapsed.as_secs_f64(),
        node_cpu_per_event: Duration::from_secs_f64(node_cpu / unbatched as f64),
        ceiling_per_second: unbatched as f64 / ceiling_took.as_secs_f64(),
    };

    // 3. Latency at half the batched rate, to a recorded Meta partner.
    let half = (batched_run.events_per_second / 2.0) as usize;
    let recorded_base = recorded_meta.base_url();
    // The node's base URL is per deployment: a second node points at the
    // recorded partner.
    let latency_node = node_rt.block_on(NodeHandle::start_with(
        "bench-latency",
        &[control_plane.url()],
        &[
            "--meta-base-url",
            &recorded_base,
            "--linger",
            &linger,
            "--connector-concurrency",
            &concurrency,
            "--node-queue-bytes",
            "1GiB",
            "--workspace-queue-share",
            "1",
        ],
    ));
    let latency_client = loadgen.block_on(latency_node.ingest_client());
    node_rt.block_on(node.stop());
    loadgen.block_on(create_connector(
        &control_plane,
        &[&latency_node],
        meta("paced"),
    ));
    let latencies = loadgen.block_on(paced_latencies(
        &latency_client,
        &recorded_meta,
        "paced",
        half,
        3,
    ));

    // 4. Isolation: the same healthy connector, alone and then beside one
    // whose partner never answers within the timeout.
    let isolation_rate = 20_000;
    loadgen.block_on(create_connector(
        &control_plane,
        &[&latency_node],
        meta("iso"),
    ));
    let alone = loadgen.block_on(paced_latencies(
        &latency_client,
        &recorded_meta,
        "iso",
        isolation_rate,
        3,
    ));
    loadgen.block_on(create_connector(
        &control_plane,
        &[&latency_node],
        webhook("iso", &stuck_partner.url()),
    ));
    let beside = loadgen.block_on(paced_latencies(
        &latency_client,
        &recorded_meta,
        "iso",
        isolation_rate,
        3,
    ));

    println!("## Delivery benchmark\n");
    println!("| | node | ceiling (bare hyper) | ratio | node CPU per event |");
    println!("|---|---|---|---|---|");
    println!(
        "| Meta CAPI, batched, {batched} events | {:.0} events/s | {:.0} events/s | {:.2} | {:.2} µs |",
        batched_run.events_per_second,
        batched_run.ceiling_per_second,
        batched_run.events_per_second / batched_run.ceiling_per_second,
        batched_run.node_cpu_per_event.as_secs_f64() * 1e6
    );
    println!(
        "| webhook, unbatched, {unbatched} events | {:.0} requests/s | {:.0} requests/s | {:.2} | {:.2} µs |",
        hook.events_per_second,
        hook.ceiling_per_second,
        hook.events_per_second / hook.ceiling_per_second,
        hook.node_cpu_per_event.as_secs_f64() * 1e6
    );
    println!(
        "\nIngest to partner at {half} events/s (half the batched rate), linger {LINGER_MS} ms: p50 {:?}, p99 {:?} ({} events)",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.len()
    );
    let (p99_alone, p99_beside) = (percentile(&alone, 0.99), percentile(&beside, 0.99));
    println!(
        "Isolation at {isolation_rate} events/s: healthy connector p99 alone {p99_alone:?}, beside a timing-out one {p99_beside:?} ({:+.1} %)",
        (p99_beside.as_secs_f64() / p99_alone.as_secs_f64() - 1.0) * 100.0
    );
    println!(
        "Memory: {queued} events queued, RSS +{:.1} MiB, {:.0} bytes per queued event",
        (after.saturating_sub(before)) as f64 / 1048576.0,
        after.saturating_sub(before) as f64 / queued.max(1) as f64
    );
}
