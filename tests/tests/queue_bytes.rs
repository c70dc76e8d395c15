//! Memory bounded in bytes, and shared fairly: large events to a stalled
//! partner fill the node's byte budget, not its memory, and the excess is
//! refused QUEUE_FULL; a workspace flooding a stalled partner takes its
//! share of the node and no more, so another workspace's events still go
//! through.
//!
//! Its own test binary: it reads the process's resident memory.

use std::time::Duration;

use e2e_tests::bench::resident_bytes;
use e2e_tests::fixtures::webhook_connector;
use e2e_tests::partners::{FakePartner, Reply, Webhook};
use e2e_tests::platform::Platform;
use eventconnectors_proto::v1::RejectReason;

const MIB: u64 = 1024 * 1024;

/// An event of about `size` bytes in `workspace`.
fn large_event(id: usize, workspace: &str, size: usize) -> String {
    format!(
        r#"{{"id":"e-{id}","workspace_id":"{workspace}","type":"Upload","properties":{{"blob":"{}"}}}}"#,
        "x".repeat(size)
    )
}

/// A partner that never answers in time.
async fn stalled() -> FakePartner {
    let partner = FakePartner::start_unrecorded(&Webhook).await;
    partner.set_default(Reply::Delay(
        Duration::from_secs(600),
        Box::new(Reply::Accept),
    ));
    partner
}

/// Sends `count` events of `size` bytes to `workspace` in batches of
/// `per_call`; returns (accepted, refused QUEUE_FULL, a refusal's detail).
async fn flood(
    platform: &mut Platform,
    workspace: &str,
    count: usize,
    size: usize,
    per_call: usize,
) -> (usize, usize, String) {
    let (mut accepted, mut full, mut detail) = (0, 0, String::new());
    for start in (0..count).step_by(per_call) {
        let events: Vec<String> = (start..(start + per_call).min(count))
            .map(|i| large_event(i, workspace, size))
            .collect();
        match platform.ingest(&events).await {
            Ok(response) => {
                accepted += response.accepted as usize;
                for rejection in response.rejected {
                    assert_eq!(rejection.reason, RejectReason::QueueFull as i32);
                    full += 1;
                    detail = rejection.detail;
                }
            }
            Err(status) => {
                assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
                full += events.len();
            }
        }
    }
    (accepted, full, detail)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_events_to_a_stalled_partner_fill_the_byte_budget_not_the_memory() {
    const BUDGET: u64 = 64 * MIB;
    const EVENTS: usize = 20_000;
    const SIZE: usize = 60 * 1024;
    let partner = stalled().await;
    let mut platform = Platform::start(&[
        // Stalled for the whole test: no timeout, retry or breaker frees
        // room while the flood runs, however slow the machine.
        "--delivery-timeout",
        "120s",
        "--node-queue-bytes",
        "64MiB",
        "--workspace-queue-share",
        "1",
    ])
    .await;
    platform
        .create(webhook_connector("big", "stalled", &partner.url()))
        .await;
    let before = resident_bytes();
    let (accepted, full, _) = flood(&mut platform, "big", EVENTS, SIZE, 100).await;
    let held = platform.node().queued_bytes() as u64;
    let grown = resident_bytes().saturating_sub(before);
    eprintln!(
        "{accepted} events of {} KiB accepted ({} MiB held), {full} refused QUEUE_FULL; the process grew by {} MiB",
        SIZE >> 10,
        held / MIB,
        grown / MIB
    );
    assert_eq!(accepted + full, EVENTS);
    assert!(full > EVENTS / 2, "most of 1.2 GB refused, {full} were");
    assert!(
        held <= BUDGET,
        "{held} bytes held over a {BUDGET}-byte budget"
    );
    let max_accepted = (BUDGET / SIZE as u64) as usize;
    assert!(
        accepted <= max_accepted,
        "{accepted} accepted, at most {max_accepted} fit"
    );
    // The budget, plus the cost of parsing batches of 6 MB as they come.
    assert!(
        grown < BUDGET + 128 * MIB,
        "the process grew by {} MiB over a {} MiB budget",
        grown / MIB,
        BUDGET / MIB
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_noisy_workspace_takes_its_share_and_no_more() {
    let stuck = stalled().await;
    let healthy = FakePartner::start(&Webhook).await;
    let mut platform = Platform::start(&[
        // Stalled for the whole test: no timeout, retry or breaker frees
        // room while the flood runs, however slow the machine.
        "--delivery-timeout",
        "120s",
        "--node-queue-bytes",
        "32MiB",
        "--workspace-queue-share",
        "0.5",
    ])
    .await;
    platform
        .create(webhook_connector("noisy", "stalled", &stuck.url()))
        .await;
    let quiet = platform
        .create(webhook_connector("quiet", "healthy", &healthy.url()))
        .await;
    let (accepted, full, detail) = flood(&mut platform, "noisy", 2_000, 30 * 1024, 100).await;
    assert!(
        accepted > 0 && full > 0,
        "{accepted} accepted, {full} refused"
    );
    assert!(detail.contains("workspace `noisy`"), "{detail}");
    assert!(
        platform.node().queued_bytes() <= 17 * MIB as usize,
        "the noisy workspace holds at most its half"
    );

    let (accepted, full, _) = flood(&mut platform, "quiet", 200, 30 * 1024, 50).await;
    assert_eq!(
        (accepted, full),
        (200, 0),
        "the quiet workspace still gets in"
    );
    let stats = platform
        .wait_for_outcomes(&quiet.id, 200, Duration::from_secs(20))
        .await;
    assert_eq!(stats.totals.expect("totals").delivered, 200);
}
