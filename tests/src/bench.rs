//! What the benchmarks and resource tests share: positional arguments,
//! percentiles, the process's resident memory, and the delivery
//! benchmarks' events, connectors and senders.

use std::collections::BTreeMap;
use std::time::Duration;

use eventconnectors_proto::v1::{Connector, DataType, FieldMapping};

use crate::control_plane::ControlPlaneHandle;
use crate::node::{IngestClient, NodeHandle};
use crate::partners::FakePartner;

/// The `position`-th positional argument (flags skipped), or `default`.
pub fn arg(position: usize, default: usize) -> usize {
    std::env::args()
        .filter(|a| !a.starts_with('-'))
        .nth(position)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// The `p` percentile (0.0-1.0) of sorted, non-empty `sorted`.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// The process's resident memory, in bytes (Linux: `/proc/self/status`).
pub fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib * 1024
}

/// Events per IngestRequest the delivery benchmarks send.
pub const BATCH: usize = 500;

/// Concurrent callers the delivery benchmarks ingest with.
pub const SENDERS: usize = 4;

/// A raw purchase event with `id` in `workspace`, as producers send them.
pub fn raw_event(id: &str, workspace: &str) -> String {
    format!(
        r#"{{"id":"{id}","workspace_id":"{workspace}","type":"Purchase","timestamp":"{}","user":{{"id":"U-{id}","email":"Shopper.{id}@Example.com","phone":"+33 6 12 34 56 78","anonymous_id":"555.{id}"}},"context":{{"ip":"203.0.113.7","user_agent":"Mozilla/5.0 (X11; Linux x86_64)","page_url":"https://shop.example/checkout"}},"properties":{{"total":"129.90","currency":"EUR","order_id":"O-{id}","items":3}}}}"#,
        jiff::Timestamp::now()
    )
}

/// A Meta CAPI connector of `workspace` mapping the purchase's total and
/// currency.
pub fn meta(workspace: &str) -> Connector {
    Connector {
        workspace_id: workspace.to_owned(),
        name: format!("meta {workspace}"),
        partner: "meta_capi".to_owned(),
        settings: BTreeMap::from([("pixel_id".to_owned(), "123456789012345".to_owned())]),
        secrets: BTreeMap::from([("access_token".to_owned(), "EAAB-token".to_owned())]),
        mappings: vec![
            FieldMapping {
                source: "properties.total".to_owned(),
                target: "custom_data.value".to_owned(),
                r#type: DataType::Number as i32,
                ..Default::default()
            },
            FieldMapping {
                source: "properties.currency".to_owned(),
                target: "custom_data.currency".to_owned(),
                r#type: DataType::String as i32,
                ..Default::default()
            },
        ],
        ..Default::default()
    }
}

/// Sends `events` in batches of [`BATCH`] over [`SENDERS`] concurrent
/// callers, spread over `clients` (one per node), re-sending what a node
/// refuses as full.
pub async fn send_all(clients: &[IngestClient], events: Vec<String>) {
    let batches: Vec<Vec<String>> = events.chunks(BATCH).map(<[String]>::to_vec).collect();
    let per_sender = batches.len().div_ceil(SENDERS);
    let mut tasks = Vec::new();
    for (n, share) in batches.chunks(per_sender.max(1)).enumerate() {
        let share = share.to_vec();
        let mut client = clients[n % clients.len()].clone();
        tasks.push(tokio::spawn(async move {
            for events in share {
                ingest_fully(&mut client, events).await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("sender");
    }
}

/// Sends `events` until every one is accepted.
pub async fn ingest_fully(client: &mut IngestClient, mut events: Vec<String>) {
    loop {
        let reply = client
            .ingest(crate::node::ingest_request(events.clone()))
            .await;
        let refused: Vec<usize> = match reply {
            Ok(reply) => reply
                .into_inner()
                .rejected
                .iter()
                .map(|r| r.index as usize)
                .collect(),
            Err(status) if status.code() == tonic::Code::ResourceExhausted => {
                (0..events.len()).collect()
            }
            Err(status) => panic!("ingest failed: {status}"),
        };
        if refused.is_empty() {
            return;
        }
        events = refused.into_iter().map(|i| events[i].clone()).collect();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Waits until `partner` has received `count` events; panics after
/// `timeout`.
pub async fn wait_events(partner: &FakePartner, count: u64, timeout: Duration) {
    let started = std::time::Instant::now();
    while partner.event_count() < count {
        assert!(
            started.elapsed() < timeout,
            "{} of {count} events at the partner",
            partner.event_count()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// CPU seconds used so far by this process's threads named `name`.
pub fn cpu_of(name: &str) -> f64 {
    cpu_seconds("/proc/self/task", name)
}

/// CPU seconds used so far by every process whose command is `command`
/// (a server beside the benchmark, such as `nats-server`).
pub fn cpu_of_process(command: &str) -> f64 {
    cpu_seconds("/proc", command)
}

/// CPU seconds of the entries of `dir` (processes or threads) named
/// `name`, from their `stat`.
fn cpu_seconds(dir: &str, name: &str) -> f64 {
    let ticks_per_second = 100.0; // USER_HZ on Linux
    let mut ticks = 0u64;
    for entry in std::fs::read_dir(dir).expect("/proc").flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if &stat[open + 1..close] != name {
            continue;
        }
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        // utime and stime are fields 14 and 15; fields[0] is field 3.
        ticks += fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0);
    }
    ticks as f64 / ticks_per_second
}

/// Creates `connector` on `control_plane` and waits until each of `nodes`
/// routes to it; returns its id.
pub async fn create_connector(
    control_plane: &ControlPlaneHandle,
    nodes: &[&NodeHandle],
    connector: Connector,
) -> String {
    let id = control_plane
        .admin()
        .await
        .create_connector(crate::fixtures::create(connector))
        .await
        .expect("create")
        .into_inner()
        .id;
    for node in nodes {
        node.wait_for_lane(&id, true, Duration::from_secs(10)).await;
    }
    id
}

/// A runtime of `threads` threads named `name` (so [`cpu_of`] can tell
/// the benchmarks' parts apart).
pub fn runtime(name: &str, threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("runtime")
}
