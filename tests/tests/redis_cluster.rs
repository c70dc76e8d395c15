//! The stats service on a real Redis Cluster of three masters, its own,
//! while the cluster changes under it: outcome batches keep arriving from
//! several "nodes" while the hash slot of a busy connector is moved to
//! another master key by key, as `redis-cli --cluster reshard` does. The
//! connector's writes get TRYAGAIN while its keys are split between the two
//! masters and MOVED after; a batch that fails is re-sent with its id, as a
//! node does. Every count must end up exactly once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use e2e_tests::redis_cluster::{RedisCluster, slot_of};
use e2e_tests::stats::{OUTCOMES_TOKEN, RedisPrefix, StatsHandle, last_7_days};
use e2e_tests::with_token;
use eventconnectors_proto::v1::stats_service_client::StatsServiceClient;
use eventconnectors_proto::v1::{ErrorCategory, Outcome, OutcomeBatch, OutcomeCount};
use tonic::transport::Channel;

const HOUR: i64 = 3600;
/// Concurrent reporters (nodes).
const REPORTERS: usize = 4;
/// Batches each reporter sends.
const BATCHES: usize = 150;
/// Hours each batch spreads its counts over: a key per hour in the
/// connector's slot, so the slot has many keys to move.
const HOURS: i64 = 24;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

fn count(connector: &str, hour: i64, outcome: Outcome) -> OutcomeCount {
    let failed = outcome == Outcome::Failed;
    OutcomeCount {
        connector_id: connector.to_owned(),
        bucket_start: Some(prost_types::Timestamp {
            seconds: hour,
            nanos: 0,
        }),
        outcome: outcome as i32,
        category: if failed {
            ErrorCategory::PartnerError as i32
        } else {
            0
        },
        partner_code: if failed { "500".into() } else { String::new() },
        count: 1,
        sample_message: if failed {
            "partner answered 500".into()
        } else {
            String::new()
        },
        ..Default::default()
    }
}

/// Sends `batch` on a stream of its own until it is acknowledged; returns
/// how many times it had to be re-sent.
async fn report_until_acked(
    client: &mut StatsServiceClient<Channel>,
    batch: OutcomeBatch,
) -> usize {
    let mut resent = 0;
    loop {
        let request = with_token(futures::stream::iter([batch.clone()]), OUTCOMES_TOKEN);
        let acked = async {
            let mut acks = client.report_outcomes(request).await.ok()?.into_inner();
            acks.message().await.ok().flatten()
        };
        match tokio::time::timeout(Duration::from_secs(10), acked).await {
            Ok(Some(ack)) => {
                assert_eq!(ack.batch_id, batch.batch_id);
                assert!(ack.rejected.is_empty(), "refused: {}", ack.rejected);
                return resent;
            }
            _ => {
                resent += 1;
                assert!(resent < 50, "batch {} never acknowledged", batch.batch_id);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_moved_to_another_master_during_intake_loses_and_doubles_no_count() {
    let cluster = RedisCluster::start(3).await;
    let prefix = RedisPrefix::new();
    let stats = StatsHandle::start_on_cluster(&cluster.urls(), &prefix).await;
    let busy = uuid::Uuid::now_v7().to_string();
    let quiet = uuid::Uuid::now_v7().to_string();
    let slot = slot_of(cluster.ports()[0], &busy).await;
    let from = cluster.owner(slot, cluster.ports()[0]).await;
    let to = *cluster
        .ports()
        .iter()
        .find(|&&port| port != from)
        .expect("another master");

    let this_hour = now() - now().rem_euclid(HOUR);
    let acked = Arc::new(AtomicUsize::new(0));
    let resent = Arc::new(AtomicUsize::new(0));
    let mut reporters = Vec::new();
    for reporter in 0..REPORTERS {
        let mut client = StatsServiceClient::new(stats.channel().await);
        let (busy, quiet) = (busy.clone(), quiet.clone());
        let (acked, resent) = (Arc::clone(&acked), Arc::clone(&resent));
        reporters.push(tokio::spawn(async move {
            for n in 0..BATCHES {
                let hour = this_hour - (n as i64 % HOURS) * HOUR;
                let batch = OutcomeBatch {
                    batch_id: format!("reporter-{reporter}-batch-{n}"),
                    node_id: format!("node-{reporter}"),
                    counts: vec![
                        count(&busy, hour, Outcome::Delivered),
                        count(&busy, hour, Outcome::Failed),
                        count(&quiet, hour, Outcome::Delivered),
                    ],
                    failures: Vec::new(),
                };
                let times = report_until_acked(&mut client, batch).await;
                resent.fetch_add(times, Ordering::Relaxed);
                acked.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    // Move the busy connector's slot while the reporters write, a key at a
    // time with pauses, so writes meet every stage of the move.
    let total = REPORTERS * BATCHES;
    while acked.load(Ordering::Relaxed) < total / 4 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let acked_at_start = acked.load(Ordering::Relaxed);
    let moved = cluster
        .move_slot(slot, to, 1, Duration::from_millis(40))
        .await;
    let acked_at_end = acked.load(Ordering::Relaxed);
    for reporter in reporters {
        reporter.await.expect("reporter");
    }

    assert_eq!(cluster.owner(slot, from).await, to, "the slot moved");
    assert!(moved > HOURS as usize, "moved {moved} keys");
    assert!(
        acked_at_start > 0 && acked_at_end < total,
        "the move did not happen mid-intake ({acked_at_start}..{acked_at_end} of {total})"
    );
    let client = StatsServiceClient::new(stats.channel().await);
    let totals = |id: &str| {
        let mut client = client.clone();
        let request = last_7_days(id);
        async move {
            client
                .get_connector_stats(request)
                .await
                .expect("stats")
                .into_inner()
        }
    };
    let busy_stats = totals(&busy).await;
    let busy_totals = busy_stats.totals.expect("totals");
    assert_eq!(
        busy_totals.delivered, total as u64,
        "delivered, exactly once"
    );
    assert_eq!(busy_totals.failed, total as u64, "failed, exactly once");
    assert_eq!(busy_stats.connector_errors.len(), 1);
    assert_eq!(busy_stats.connector_errors[0].count, total as u64);
    assert_eq!(busy_stats.connector_errors[0].partner_code, "500");
    let quiet_totals = totals(&quiet).await.totals.expect("totals");
    assert_eq!(quiet_totals.delivered, total as u64);
    // Reads still follow the slot: the hour series adds up too.
    let hours: u64 = busy_stats
        .series
        .iter()
        .map(|point| point.totals.as_ref().map_or(0, |t| t.delivered))
        .sum();
    assert_eq!(hours, total as u64);
    eprintln!(
        "slot {slot} moved ({moved} keys) while batches {acked_at_start}..{acked_at_end} of {total} were counted; {} re-sent",
        resent.load(Ordering::Relaxed)
    );
    stats.stop().await;
}
