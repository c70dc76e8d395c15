//! The durable mode in process: ingest stores events in a JetStream stream
//! of the test's own on the machine's NATS server, the node delivers them
//! from there, and an event leaves the log once its outcomes are counted.

use std::time::Duration;

use e2e_tests::event_log::{TestLog, numbered_events as events, webhook_arrivals as arrivals};
use e2e_tests::fixtures::webhook_connector;
use e2e_tests::partners::{FakePartner, Reply, Webhook};
use e2e_tests::platform::{Platform, event};
use serde_json::json;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

const SECOND: Duration = Duration::from_secs(1);

/// A platform in the durable mode on `log` with a webhook connector of
/// `acme` to a recorded fake partner.
struct Durable {
    platform: Platform,
    partner: FakePartner,
    hook: eventconnectors_proto::v1::Connector,
}

async fn with_webhook(log: &TestLog, extra: &[&str]) -> Durable {
    e2e_tests::init_logs();
    let partner = FakePartner::start(&Webhook).await;
    let mut flags = log.flags("2s");
    flags.extend(extra.iter().map(|flag| (*flag).to_owned()));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut platform = Platform::start(&flags).await;
    platform.node().wait_ready(10 * SECOND).await;
    let hook = platform
        .create(webhook_connector("acme", "hook", &partner.url()))
        .await;
    Durable {
        platform,
        partner,
        hook,
    }
}

#[tokio::test]
async fn an_accepted_event_is_delivered_from_the_log_and_leaves_it() {
    let log = TestLog::new();
    let Durable {
        mut platform,
        partner,
        hook,
    } = with_webhook(&log, &[]).await;
    platform.ingest_all(&events("e", 300)).await;

    let stats = platform.wait_for_outcomes(&hook.id, 300, 20 * SECOND).await;
    assert_eq!(stats.totals.expect("totals").delivered, 300);
    log.wait_until_empty(10 * SECOND).await;
    let arrivals = arrivals(&partner);
    assert_eq!(arrivals.len(), 300, "every event reached the partner");
    assert!(arrivals.values().all(|&n| n == 1), "and once each");
}

#[tokio::test]
async fn an_event_sent_twice_within_the_window_is_stored_and_delivered_once() {
    let log = TestLog::new();
    let Durable {
        mut platform,
        partner,
        hook,
    } = with_webhook(&log, &[]).await;
    let batch = events("again", 50);
    platform.ingest_all(&batch).await;
    // The producer did not see the answer and sends the batch again.
    platform.ingest_all(&batch).await;

    platform.wait_for_outcomes(&hook.id, 50, 20 * SECOND).await;
    log.wait_until_empty(10 * SECOND).await;
    tokio::time::sleep(SECOND / 2).await;
    let stats = platform.stats_of(&hook.id).await;
    assert_eq!(stats.totals.expect("totals").delivered, 50);
    assert_eq!(partner.request_count(), 50, "each event sent once");
}

#[tokio::test]
async fn ingest_says_unavailable_while_the_log_is_unreachable() {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let log = TestLog::on(&format!("nats://{closed}"));
    let mut flags = log.flags("2s");
    flags.push("--event-log-max-deliveries".to_owned());
    flags.push("3".to_owned());
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    e2e_tests::init_logs();
    let mut platform = Platform::start(&flags).await;
    let refused = platform
        .ingest(&events("nowhere", 3))
        .await
        .expect_err("nothing can be stored");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(refused.message().contains("event log"), "{refused:?}");
    assert_eq!(
        platform.node().health("").await,
        ServingStatus::NotServing,
        "not ready without its log"
    );
}

#[tokio::test]
async fn a_full_log_refuses_new_events_and_keeps_the_stored_ones() {
    let log = TestLog::new();
    let Durable {
        mut platform,
        partner,
        hook,
    } = with_webhook(
        &log,
        &[
            "--event-log-max-bytes",
            "32KiB",
            "--connector-concurrency",
            "1",
        ],
    )
    .await;
    // Events stay in the log while the partner takes its time.
    partner.set_default(Reply::Delay(SECOND, Box::new(Reply::Accept)));
    let padding = "x".repeat(1000);
    let batch: Vec<String> = (0..100)
        .map(|n| {
            event(
                &format!("big-{n}"),
                "acme",
                "t",
                json!({ "padding": padding }),
            )
        })
        .collect();
    // Five events a call, until the log says it is full.
    let (mut accepted, mut refusal) = (0, None);
    for chunk in batch.chunks(5) {
        match platform.ingest(chunk).await {
            Ok(response) => {
                assert!(response.rejected.is_empty(), "{response:?}");
                accepted += response.accepted;
            }
            Err(status) => {
                refusal = Some((status, chunk));
                break;
            }
        }
    }
    let (refusal, refused) = refusal.expect("the log filled up");
    assert!(accepted > 0, "nothing stored before the log was full");
    assert_eq!(refusal.code(), Code::ResourceExhausted, "{refusal:?}");
    assert!(refusal.message().contains("full"), "{refusal:?}");
    let again = platform
        .ingest(refused)
        .await
        .expect_err("still full: nothing stored");
    assert_eq!(again.code(), Code::ResourceExhausted, "{again:?}");

    partner.set_default(Reply::Accept);
    let stats = platform
        .wait_for_outcomes(&hook.id, u64::from(accepted), 30 * SECOND)
        .await;
    assert_eq!(
        stats.totals.expect("totals").delivered,
        u64::from(accepted),
        "every stored event delivered"
    );
    log.wait_until_empty(10 * SECOND).await;
}
