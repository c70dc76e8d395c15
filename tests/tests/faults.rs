//! Faults on the real stack, every service its own process: the control
//! plane on Postgres, the stats service on Redis (on the three-master Redis
//! Cluster where a node is killed), nodes in the durable mode on a stream
//! of their own on the machine's NATS server. Each test is named for what
//! an operator sees.

use std::sync::Arc;
use std::time::Duration;

use e2e_tests::event_log::{TestLog, numbered_events as events, webhook_arrivals as arrivals};
use e2e_tests::fixtures::webhook_connector;
use e2e_tests::partners::{FakePartner, Reply, Webhook};
use e2e_tests::processes::Stack;
use e2e_tests::stats::Backend;
use tonic_health::pb::health_check_response::ServingStatus;

const SECOND: Duration = Duration::from_secs(1);

/// The number after `field` on the last log line containing `message`
/// (colour codes removed).
fn logged_number(output: &str, message: &str, field: &str) -> Option<u64> {
    let line = output.lines().rev().find(|line| line.contains(message))?;
    let mut plain = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    let rest = &plain[plain.find(field)? + field.len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Sends `events` to node `index` in batches of `size`, every one accepted.
async fn ingest_all(stack: &Stack, index: usize, events: &[String], size: usize) {
    for batch in events.chunks(size) {
        let response = stack.ingest(index, batch).await.expect("ingest");
        assert_eq!(
            (response.accepted as usize, response.rejected.len()),
            (batch.len(), 0)
        );
    }
}

#[tokio::test]
async fn a_node_killed_with_events_in_flight_loses_none_of_them() {
    const EVENTS: usize = 10_000;
    const HELD: usize = 2_000;
    let partner = FakePartner::start(&Webhook).await;
    partner.set_default(Reply::Delay(
        Duration::from_millis(10),
        Box::new(Reply::Accept),
    ));
    let held = HELD.to_string();
    let stack = Stack::start_with_stats(
        Backend::RedisCluster,
        TestLog::new(),
        2,
        &[
            "--node-queue-capacity",
            &held,
            "--connector-concurrency",
            "32",
        ],
    )
    .await;
    let mut stack = stack;
    let hook = stack
        .create(webhook_connector("acme", "hook", &partner.url()))
        .await;
    tokio::time::sleep(SECOND / 2).await;
    let all = events("kill", EVENTS);
    // Through the node that survives.
    ingest_all(&stack, 1, &all, 1000).await;
    partner.wait_for_requests(2_000, 60 * SECOND).await;
    stack.nodes[0].kill();
    let killed_at = partner.request_count();

    let totals = stack
        .wait_for_totals(&hook.id, 120 * SECOND, |t| t.delivered >= EVENTS as u64)
        .await;
    stack.log.wait_until_empty(30 * SECOND).await;
    tokio::time::sleep(SECOND).await;
    let totals = stack.totals(&hook.id).await.unwrap_or(totals);
    let arrivals = arrivals(&partner);
    let sent_again: usize = arrivals.values().map(|n| n - 1).sum();
    let counted_again = totals.delivered - EVENTS as u64;
    eprintln!(
        "killed after {killed_at} requests: every one of {EVENTS} events reached the partner, \
         {sent_again} sent twice, {counted_again} counted twice (bound: {HELD}, the killed node's capacity)"
    );
    assert_eq!(arrivals.len(), EVENTS, "every event reached the partner");
    assert_eq!(totals.failed, 0, "{totals:?}");
    assert!(sent_again <= HELD, "{sent_again} sent again");
    assert!(
        counted_again as usize <= sent_again,
        "{counted_again} counted again"
    );
}

#[tokio::test]
async fn scaling_down_a_node_hands_its_queue_to_the_others_with_nothing_failed() {
    const EVENTS: usize = 600;
    const BATCH: usize = 50;
    let partner = FakePartner::start(&Webhook).await;
    partner.set_default(Reply::Delay(
        Duration::from_millis(50),
        Box::new(Reply::Accept),
    ));
    let mut stack = Stack::start(
        TestLog::new(),
        2,
        &["--connector-concurrency", "4", "--shutdown-grace", "5s"],
    )
    .await;
    let hook = stack
        .create(webhook_connector("acme", "hook", &partner.url()))
        .await;
    tokio::time::sleep(SECOND / 2).await;
    ingest_all(&stack, 1, &events("scale", EVENTS), BATCH).await;
    partner.wait_for_requests(60, 30 * SECOND).await;
    let status = stack.nodes[0].terminate(15 * SECOND).await;
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let output = stack.nodes[0].output();
    let given_back = logged_number(&output, "given back to the event log", "messages=")
        .unwrap_or_else(|| panic!("no hand-back logged:\n{output}"));
    assert!(
        given_back > 0,
        "the node stopped with nothing queued: no test"
    );

    let totals = stack
        .wait_for_totals(&hook.id, 60 * SECOND, |t| t.delivered >= EVENTS as u64)
        .await;
    stack.log.wait_until_empty(10 * SECOND).await;
    tokio::time::sleep(SECOND / 2).await;
    let totals = stack.totals(&hook.id).await.unwrap_or(totals);
    assert_eq!(
        (totals.delivered, totals.failed),
        (EVENTS as u64, 0),
        "{totals:?}"
    );
    let arrivals = arrivals(&partner);
    let sent_again: usize = arrivals.values().map(|n| n - 1).sum();
    eprintln!(
        "the stopped node gave {given_back} messages of {BATCH} events back; {sent_again} events sent twice, none counted twice"
    );
    assert_eq!(arrivals.len(), EVENTS);
    // What a node had sent of a message it gave back is sent again by the
    // next one (with the same id), and counted once.
    assert!(
        sent_again as u64 <= given_back * BATCH as u64,
        "{sent_again} sent again"
    );
}

#[tokio::test]
async fn restarting_the_stats_service_mid_stream_loses_and_doubles_no_count() {
    const EVENTS: usize = 3_000;
    let partner = FakePartner::start(&Webhook).await;
    let mut stack = Stack::start(TestLog::new(), 1, &[]).await;
    let hook = stack
        .create(webhook_connector("acme", "hook", &partner.url()))
        .await;
    tokio::time::sleep(SECOND / 2).await;
    let all = events("stats", EVENTS);
    ingest_all(&stack, 0, &all[..1000], 250).await;
    stack.stats.kill();
    ingest_all(&stack, 0, &all[1000..2000], 250).await;
    partner.wait_for_requests(2000, 30 * SECOND).await;
    stack.stats.restart();
    stack.stats.wait_ready(30 * SECOND).await;
    ingest_all(&stack, 0, &all[2000..], 250).await;

    stack
        .wait_for_totals(&hook.id, 60 * SECOND, |t| t.delivered >= EVENTS as u64)
        .await;
    stack.log.wait_until_empty(10 * SECOND).await;
    tokio::time::sleep(SECOND / 2).await;
    let totals = stack.totals(&hook.id).await.expect("totals");
    assert_eq!(totals.delivered, EVENTS as u64, "{totals:?}");
    assert_eq!(partner.request_count(), EVENTS as u64);
}

#[tokio::test]
async fn restarting_the_control_plane_mid_stream_keeps_delivery_going() {
    let partner = FakePartner::start(&Webhook).await;
    let other = FakePartner::start(&Webhook).await;
    let mut stack = Stack::start(TestLog::new(), 1, &[]).await;
    let hook = stack
        .create(webhook_connector("acme", "hook", &partner.url()))
        .await;
    tokio::time::sleep(SECOND / 2).await;
    stack.control_plane.kill();
    ingest_all(&stack, 0, &events("cp-down", 500), 250).await;
    partner.wait_for_requests(500, 30 * SECOND).await;
    stack.control_plane.restart();
    stack.control_plane.wait_ready(30 * SECOND).await;
    let second = stack
        .create(webhook_connector("acme", "second", &other.url()))
        .await;
    // The node follows the restarted control plane: the new connector gets
    // what comes next.
    let started = std::time::Instant::now();
    let mut n = 0;
    while other.request_count() == 0 {
        assert!(
            started.elapsed() < 30 * SECOND,
            "the node never got the new connector"
        );
        ingest_all(&stack, 0, &events(&format!("cp-back-{n}"), 1), 1).await;
        n += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stack
        .wait_for_totals(&hook.id, 30 * SECOND, |t| t.delivered >= 500)
        .await;
    stack
        .wait_for_totals(&second.id, 30 * SECOND, |t| t.delivered >= 1)
        .await;
}

#[tokio::test]
async fn an_event_whose_nodes_keep_dying_is_counted_failed_not_lost() {
    let partner = Arc::new(FakePartner::start(&Webhook).await);
    // The partner never answers in time: the node holds the events.
    partner.set_default(Reply::Delay(60 * SECOND, Box::new(Reply::Accept)));
    let mut stack = Stack::start(
        TestLog::new(),
        1,
        &[
            "--event-log-max-deliveries",
            "1",
            "--delivery-timeout",
            "30s",
        ],
    )
    .await;
    let hook = stack
        .create(webhook_connector("acme", "hook", &partner.url()))
        .await;
    tokio::time::sleep(SECOND / 2).await;
    ingest_all(&stack, 0, &events("doomed", 5), 5).await;
    partner.wait_for_requests(5, 10 * SECOND).await;
    stack.nodes[0].kill();
    stack.add_node().await;

    let totals = stack
        .wait_for_totals(&hook.id, 30 * SECOND, |t| t.failed >= 5)
        .await;
    assert_eq!((totals.failed, totals.delivered), (5, 0), "{totals:?}");
    stack.log.wait_until_empty(10 * SECOND).await;
    let output = stack.nodes[1].output();
    assert!(output.contains("gave up"), "{output}");
}

#[tokio::test]
async fn restarting_nats_mid_stream_loses_no_accepted_event() {
    const EVENTS: usize = 2_000;
    let mut nats = e2e_tests::processes::nats_server().await;
    let url = nats.url().replace("http://", "nats://");
    let partner = FakePartner::start(&Webhook).await;
    let stack = Stack::start(TestLog::on(&url), 1, &[]).await;
    let hook = stack
        .create(webhook_connector("acme", "hook", &partner.url()))
        .await;
    tokio::time::sleep(SECOND / 2).await;
    let all = events("nats", EVENTS);
    let (mut refused, mut restarted) = (0, false);
    for (n, batch) in all.chunks(100).enumerate() {
        if n == 5 {
            nats.kill();
            let away = stack.ingest(0, batch).await;
            assert!(
                away.as_ref().map_or(true, |r| r.accepted == 0),
                "stored with NATS away: {away:?}"
            );
            refused += 1;
            // The node leaves its Service while NATS is away...
            stack.nodes[0]
                .wait_readiness(ServingStatus::NotServing, 10 * SECOND)
                .await;
            nats.restart();
            restarted = true;
            // ... and is back once NATS is.
            stack.nodes[0].wait_ready(30 * SECOND).await;
        }
        // A producer re-sends a batch until all of it is stored: what was
        // stored before is stored once.
        let started = std::time::Instant::now();
        loop {
            match stack.ingest(0, batch).await {
                Ok(response) if response.rejected.is_empty() => break,
                Ok(_) | Err(_) => refused += 1,
            }
            assert!(started.elapsed() < 30 * SECOND, "NATS never came back");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(restarted);
    let totals = stack
        .wait_for_totals(&hook.id, 60 * SECOND, |t| t.delivered >= EVENTS as u64)
        .await;
    // A server killed with -9 may keep acknowledged messages in its
    // store: what matters is that nothing is left to deliver.
    stack.log.wait_until_delivered(30 * SECOND).await;
    let arrivals = arrivals(&partner);
    let sent_again: usize = arrivals.values().map(|n| n - 1).sum();
    eprintln!(
        "{refused} calls refused while NATS was away; {} delivered, {sent_again} sent twice, {} acknowledged messages left in the store",
        totals.delivered,
        stack.log.messages().await
    );
    assert_eq!(
        arrivals.len(),
        EVENTS,
        "every accepted event reached the partner"
    );
    assert_eq!(totals.failed, 0, "{totals:?}");
    // Messages JetStream redelivered because their acknowledgements were
    // lost are acknowledged again by the node that ended them, not counted
    // again.
    tokio::time::sleep(SECOND).await;
    let settled = stack.totals(&hook.id).await.expect("totals");
    assert_eq!(
        settled.delivered, EVENTS as u64,
        "counted once: {settled:?}"
    );
}

#[tokio::test]
async fn a_node_started_while_postgres_is_down_gets_the_last_configuration() {
    let partner = FakePartner::start(&Webhook).await;
    let mut stack = Stack::start(TestLog::new(), 1, &[]).await;
    let hook = stack
        .create(webhook_connector("acme", "hook", &partner.url()))
        .await;
    // The control plane keeps the snapshot of what it published last,
    // rebuilt once changes pause for a second (two ticks at most).
    tokio::time::sleep(3 * SECOND).await;
    stack.database.cut();
    let index = stack.add_node().await;
    // ListNodes says where the configuration comes from meanwhile, and
    // lists the new node from memory with the version it was served.
    let listed = stack
        .list_nodes()
        .await
        .expect("ListNodes answers while Postgres is down");
    let outage = listed.store_outage.clone().expect("the outage is reported");
    assert!(outage.serving_version > 0, "{outage:?}");
    assert!(!outage.reason.is_empty(), "{outage:?}");
    let node = listed
        .nodes
        .iter()
        .find(|node| node.node_id == format!("node-{index}"))
        .unwrap_or_else(|| panic!("the new node is listed: {listed:?}"));
    assert!(node.connected, "{node:?}");
    assert_eq!(node.applied_version, outage.serving_version, "{node:?}");
    // Only the new node is left to deliver.
    let _ = stack.nodes[0].terminate(15 * SECOND).await;
    ingest_all(&stack, index, &events("pg-down", 200), 100).await;
    let totals = stack
        .wait_for_totals(&hook.id, 30 * SECOND, |t| t.delivered >= 200)
        .await;
    assert_eq!(totals.failed, 0, "{totals:?}");
    let output = stack.control_plane.output();
    assert!(
        output.contains("serving the last snapshot from memory"),
        "{output}"
    );
    stack.database.restore();
    // Back: the outage is no longer reported once the store answers.
    let started = std::time::Instant::now();
    loop {
        if let Ok(listed) = stack.list_nodes().await
            && listed.store_outage.is_none()
        {
            break;
        }
        assert!(
            started.elapsed() < 30 * SECOND,
            "ListNodes still reports the outage"
        );
        tokio::time::sleep(SECOND / 5).await;
    }
    let output = stack.control_plane.output();
    assert!(
        output.contains("configuration store available again"),
        "{output}"
    );
}
