//! Delivers one batch: the adapter's requests, each sent until it succeeds,
//! fails for good, or runs out of attempts (1 + 3 retries by default, with
//! jittered backoff, honouring Retry-After), each attempt let through by the
//! connector's breaker. Every event of the batch ends in exactly one outcome.
//!
//! The breaker counts what says the partner is unhealthy: timeouts,
//! connection failures and the answers worth retrying (5xx, 429, throttling
//! codes). A rejected payload or bad credentials are answers from a healthy
//! partner; they fail their events with their own category instead of
//! hiding the cause behind CIRCUIT_BREAKER.
//!
//! Sending and counting are apart: [`send`] says how a request's events
//! ended, [`record`] counts them, at once for events kept in memory, on
//! each event's receipt for events from the durable log, and lists failed
//! ones (id, attempts, the partner's answer) for the connector's recent
//! failures.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use eventconnectors_proto::v1::ErrorCategory;

use partners::adapter::{Failure, PartnerRequest, Retry, Verdict};

use super::{Delivery, Lane, Queued, StopReason, weight};
use crate::metrics;
use crate::outcomes::Receipt;

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

/// Delivers `batch` for `connector` and gives back its room.
pub async fn deliver(connector: &Lane, delivery: &Delivery, batch: Vec<Queued>) {
    let count = batch.len();
    let bytes: usize = batch.iter().map(|queued| weight(&queued.event)).sum();
    let (events, receipts): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .map(|queued| (queued.event, queued.receipt))
        .unzip();
    let requests = {
        let current = connector.current();
        connector.adapter.requests(
            &current.config,
            &events,
            delivery.base_urls.get(connector.partner),
            unix_now(),
        )
    };
    // Only the ids are kept while the requests are out (for the failures).
    let ids: Vec<Box<str>> = events.into_iter().map(|event| event.event_id).collect();
    let ends = if requests.len() == 1 {
        vec![send(connector, delivery, &requests[0]).await]
    } else {
        futures::future::join_all(
            requests
                .iter()
                .map(|request| send(connector, delivery, request)),
        )
        .await
    };
    // A node keeps every event in memory or takes every one from the log.
    let logged = receipts.iter().any(Option::is_some);
    let events_of = |indexes: &mut dyn Iterator<Item = usize>| match logged {
        true => Events::Logged(
            indexes
                .filter_map(|index| receipts[index].as_ref())
                .collect(),
        ),
        false => Events::Counted(indexes.count()),
    };
    let mut carried = vec![false; count];
    for (request, sent) in requests.iter().zip(&ends) {
        // Each event once, even from an adapter that repeats one.
        let mut fresh = request
            .events
            .iter()
            .copied()
            .filter(|&index| index < count && !std::mem::replace(&mut carried[index], true));
        let events = events_of(&mut fresh);
        record(
            connector,
            delivery,
            sent,
            events,
            &mut ids_at(&ids, &request.events),
        );
    }
    let left: Vec<usize> = (0..count).filter(|&index| !carried[index]).collect();
    if !left.is_empty() {
        // An adapter that leaves events out is a bug; they still get an
        // outcome rather than vanishing.
        let failure = Failure {
            category: ErrorCategory::Other,
            partner_code: String::new(),
            message: "the partner adapter built no request for the event".into(),
            retry: Retry::Never,
        };
        let sent = Sent {
            ended: Ended::Failed(failure),
            attempts: 0,
        };
        let events = events_of(&mut left.iter().copied());
        record(connector, delivery, &sent, events, &mut ids_at(&ids, &left));
    }
    connector.release(count, bytes);
}

/// The ids of the events at `indexes`.
fn ids_at<'a>(ids: &'a [Box<str>], indexes: &'a [usize]) -> impl Iterator<Item = &'a str> {
    indexes
        .iter()
        .filter_map(|&index| ids.get(index))
        .map(|id| &**id)
}

/// How a request ended, after how many attempts.
#[derive(Debug)]
struct Sent {
    ended: Ended,
    /// Requests sent (0: none, e.g. the breaker was open).
    attempts: u32,
}

/// How a request's events ended on this node.
#[derive(Debug)]
enum Ended {
    /// The partner took them.
    Delivered,
    /// The partner took the first `accepted`; the rest failed.
    Partial {
        /// Events taken.
        accepted: usize,
        /// Why the rest were not.
        failure: Failure,
    },
    /// Failed for good.
    Failed(Failure),
    /// Not sent: the connector was deactivated or deleted.
    Dropped,
    /// Not sent: back to the log for another node.
    HandedBack,
}

/// The events an outcome is about.
#[derive(Debug)]
enum Events<'a> {
    /// So many, kept in memory: counted at once.
    Counted(usize),
    /// From the log: each one's outcome waits on its receipt.
    Logged(Vec<&'a Receipt>),
}

/// Counts how `events` (whose ids are `ids`, in request order) ended, and
/// lists the failed ones.
fn record(
    connector: &Lane,
    delivery: &Delivery,
    sent: &Sent,
    events: Events<'_>,
    ids: &mut dyn Iterator<Item = &str>,
) {
    let outcomes = &delivery.outcomes;
    let (id, partner) = (connector.id.as_str(), connector.partner);
    let ended = &sent.ended;
    // The failed part of a partial answer is counted, not listed: the
    // partner does not say which events it refused.
    match ended {
        Ended::Failed(failure) => outcomes.list_failed(id, failure, sent.attempts, ids),
        Ended::Partial { .. } | Ended::Delivered | Ended::Dropped | Ended::HandedBack => {}
    }
    let receipts = match events {
        Events::Counted(count) => {
            match ended {
                Ended::Delivered => outcomes.delivered(id, partner, count, None),
                Ended::Partial { accepted, failure } => {
                    let accepted = (*accepted).min(count);
                    outcomes.delivered(id, partner, accepted, None);
                    outcomes.failed(id, partner, failure, count - accepted, None);
                }
                Ended::Failed(failure) => outcomes.failed(id, partner, failure, count, None),
                Ended::Dropped => outcomes.dropped(id, partner, count, None),
                Ended::HandedBack => {}
            }
            return;
        }
        Events::Logged(receipts) => receipts,
    };
    // Which of a partial answer's events were taken is not said: the
    // counts are what matter.
    for (n, receipt) in receipts.into_iter().enumerate() {
        let receipt = Some(receipt);
        match ended {
            Ended::Delivered => outcomes.delivered(id, partner, 1, receipt),
            Ended::Partial { accepted, .. } if n < *accepted => {
                outcomes.delivered(id, partner, 1, receipt);
            }
            Ended::Partial { failure, .. } | Ended::Failed(failure) => {
                outcomes.failed(id, partner, failure, 1, receipt);
            }
            Ended::Dropped => outcomes.dropped(id, partner, 1, receipt),
            Ended::HandedBack => {
                outcomes.hand_back(receipt);
                continue;
            }
        }
        outcomes.settle(receipt);
    }
}

/// Sends one request until it has its outcome.
async fn send(connector: &Lane, delivery: &Delivery, request: &PartnerRequest) -> Sent {
    let mut attempts = 0;
    let ended = loop {
        if let Some(stopped) = stopped(connector) {
            break stopped;
        }
        if !connector.breaker().allow(Instant::now()) {
            break Ended::Failed(Failure {
                category: ErrorCategory::CircuitBreaker,
                partner_code: String::new(),
                message: "not sent: the connector's circuit breaker is open".into(),
                retry: Retry::Never,
            });
        }
        attempts += 1;
        let started = Instant::now();
        let verdict = match delivery.client.send(request).await {
            Ok(response) => connector.adapter.classify(&response, request.events.len()),
            Err(failure) => Verdict::Failed(failure),
        };
        let verdict = scrubbed(connector, verdict);
        metrics::attempt(connector.partner, started.elapsed());
        let healthy = !matches!(
            &verdict,
            Verdict::Failed(Failure {
                retry: Retry::Later(_),
                ..
            })
        );
        connector.breaker().record(Instant::now(), healthy);
        let failure = match verdict {
            Verdict::Delivered => break Ended::Delivered,
            Verdict::Partial { accepted, failure } => break Ended::Partial { accepted, failure },
            Verdict::Failed(failure) => failure,
        };
        let Some(delay) = delivery.retry.next_delay(attempts, failure.retry) else {
            tracing::debug!(connector = %connector.id, attempts, category = ?failure.category, code = %failure.partner_code, "delivery failed");
            break Ended::Failed(failure);
        };
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = connector.stopped() => {}
        }
    };
    Sent { ended, attempts }
}

/// The verdict with the connector's credentials scrubbed from what the
/// partner said (see [`Failure::scrubbed`]).
fn scrubbed(connector: &Lane, verdict: Verdict) -> Verdict {
    let current = connector.current();
    let secrets = current.config.secrets.values().map(String::as_str);
    match verdict {
        Verdict::Delivered => Verdict::Delivered,
        Verdict::Partial { accepted, failure } => Verdict::Partial {
            accepted,
            failure: failure.scrubbed(secrets),
        },
        Verdict::Failed(failure) => Verdict::Failed(failure.scrubbed(secrets)),
    }
}

/// How events end that will not be sent because the connector stopped:
/// DROPPED when it was deactivated or deleted, FAILED (OTHER) when the node
/// is shutting down, back to the log in the durable mode; `None` while it
/// runs.
fn stopped(connector: &Lane) -> Option<Ended> {
    Some(match connector.stopped_by()? {
        StopReason::Removed => Ended::Dropped,
        StopReason::HandBack => Ended::HandedBack,
        StopReason::Shutdown => Ended::Failed(Failure {
            category: ErrorCategory::Other,
            partner_code: String::new(),
            message: "shutdown: the node stopped before the event was delivered".into(),
            retry: Retry::Never,
        }),
    })
}

/// Ends the queued events of a stopped connector (`receipts`, one per
/// event, of `bytes` in all) and gives back their room.
pub fn end_stopped(
    connector: &Lane,
    delivery: &Delivery,
    receipts: &[Option<Receipt>],
    bytes: usize,
) {
    let sent = Sent {
        ended: stopped(connector).unwrap_or(Ended::Dropped),
        attempts: 0,
    };
    let events = match receipts.iter().any(Option::is_some) {
        true => Events::Logged(receipts.iter().flatten().collect()),
        false => Events::Counted(receipts.len()),
    };
    // Their ids are not at hand: counted, not listed.
    record(connector, delivery, &sent, events, &mut std::iter::empty());
    connector.release(receipts.len(), bytes);
}
