//! Durable-mode benchmark: the delivery benchmark's two workloads (Meta
//! CAPI batched, webhook unbatched) through one node and through two, kept
//! in memory and stored on the durable log (the machine's NATS server, a
//! stream of the run's own), in the same run. Nodes, fake partners and the
//! load generator are in this process on their own named threads; NATS is
//! its own process, and its CPU time is read from /proc as well.
//!
//! cargo bench -p e2e-tests --bench durable -- [batched events] [webhook events]
//! (defaults 200000 20000)

#![allow(clippy::print_stdout)] // the report on stdout is what a benchmark is for

use std::time::{Duration, Instant};

use e2e_tests::bench::{
    arg, cpu_of, cpu_of_process, create_connector, meta, raw_event, runtime, send_all, wait_events,
};
use e2e_tests::control_plane::{ControlPlaneHandle, Db};
use e2e_tests::event_log::TestLog;
use e2e_tests::fixtures::webhook_connector;
use e2e_tests::node::NodeHandle;
use e2e_tests::partners::{FakePartner, MetaCapi, Webhook};
use eventconnectors_proto::v1::Connector;
use tokio::runtime::Runtime;

/// One workload's figures.
struct Run {
    per_second: f64,
    node_cpu_per_event: Duration,
    nats_cpu_per_event: Duration,
}

/// Sends `count` events of `workspace` through `nodes` and waits until
/// `partner` has them all.
fn measure(
    loadgen: &Runtime,
    nodes: &[NodeHandle],
    partner: &FakePartner,
    workspace: &str,
    count: usize,
) -> Run {
    let events: Vec<String> = (0..count)
        .map(|i| raw_event(&format!("{workspace}-{i}"), workspace))
        .collect();
    let clients: Vec<_> = nodes
        .iter()
        .map(|node| loadgen.block_on(node.ingest_client()))
        .collect();
    let target = partner.event_count() + count as u64;
    let (node_before, nats_before) = (cpu_of("node"), cpu_of_process("nats-server"));
    let started = Instant::now();
    loadgen.block_on(async {
        send_all(&clients, events).await;
        wait_events(partner, target, Duration::from_secs(600)).await;
    });
    let elapsed = started.elapsed();
    let per_event = |seconds: f64| Duration::from_secs_f64(seconds / count as f64);
    Run {
        per_second: count as f64 / elapsed.as_secs_f64(),
        node_cpu_per_event: per_event(cpu_of("node") - node_before),
        nats_cpu_per_event: per_event(cpu_of_process("nats-server") - nats_before),
    }
}

fn main() {
    let batched = arg(1, 200_000);
    let unbatched = arg(2, 20_000);
    let loadgen = runtime("loadgen", 2);
    let node_rt = runtime("node", 2);
    let partner_rt = runtime("partner", 2);
    let meta_partner = partner_rt.block_on(FakePartner::start_unrecorded(&MetaCapi));
    let hook_partner = partner_rt.block_on(FakePartner::start_unrecorded(&Webhook));
    let control_plane = loadgen.block_on(ControlPlaneHandle::start(Db::Sqlite));
    let meta_base = meta_partner.base_url();

    let mut rows = Vec::new();
    for node_count in [1, 2] {
        for durable in [false, true] {
            let log = durable.then(TestLog::new);
            let mut flags: Vec<String> = [
                "--meta-base-url",
                &meta_base,
                "--linger",
                "5ms",
                "--connector-concurrency",
                "16",
                "--connector-queue-capacity",
                "200000",
                "--node-queue-bytes",
                "1GiB",
                "--workspace-queue-share",
                "1",
            ]
            .iter()
            .map(|flag| (*flag).to_owned())
            .collect();
            if let Some(log) = &log {
                flags.extend(log.flags("30s"));
            }
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            let nodes: Vec<NodeHandle> = (0..node_count)
                .map(|n| {
                    let node = node_rt.block_on(NodeHandle::start_with(
                        &format!("bench-{n}"),
                        &[control_plane.url()],
                        &flags,
                    ));
                    loadgen.block_on(node.wait_ready(Duration::from_secs(30)));
                    node
                })
                .collect();
            let mode = if durable { "durable" } else { "memory" };
            let batched_workspace = format!("b-{mode}-{node_count}");
            let hook_workspace = format!("w-{mode}-{node_count}");
            let all: Vec<&NodeHandle> = nodes.iter().collect();
            let create_everywhere = |connector: Connector| {
                loadgen.block_on(create_connector(&control_plane, &all, connector))
            };
            create_everywhere(meta(&batched_workspace));
            create_everywhere(webhook_connector(
                &hook_workspace,
                "hook",
                &hook_partner.url(),
            ));
            let batched_run = measure(&loadgen, &nodes, &meta_partner, &batched_workspace, batched);
            let hook_run = measure(&loadgen, &nodes, &hook_partner, &hook_workspace, unbatched);
            for node in nodes {
                node_rt.block_on(node.stop());
            }
            rows.push((node_count, mode, batched_run, hook_run));
        }
    }

    println!("## Durable-mode benchmark\n");
    println!(
        "| nodes | mode | Meta CAPI batched, {batched} events | webhook unbatched, {unbatched} events |"
    );
    println!("|---|---|---|---|");
    for (nodes, mode, batched_run, hook_run) in &rows {
        let cell = |run: &Run, unit: &str| {
            format!(
                "{:.0} {unit}/s; CPU per event: node {:.2} µs, NATS {:.2} µs",
                run.per_second,
                run.node_cpu_per_event.as_secs_f64() * 1e6,
                run.nats_cpu_per_event.as_secs_f64() * 1e6
            )
        };
        println!(
            "| {nodes} | {mode} | {} | {} |",
            cell(batched_run, "events"),
            cell(hook_run, "requests")
        );
    }
}
