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

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use eventconnectors_proto::v1::ErrorCategory;

use partners::adapter::{Failure, PartnerRequest, Retry, Verdict};

use super::{Delivery, Lane, Queued, StopReason, weight};
use crate::metrics;

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
    drop(events);
    let sent: usize = requests.iter().map(|request| request.events.len()).sum();
    let ended = if requests.len() == 1 {
        vec![send(connector, delivery, &requests[0]).await]
    } else {
        futures::future::join_all(
            requests
                .iter()
                .map(|request| send(connector, delivery, request)),
        )
        .await
    };
    if sent < count {
        // An adapter that leaves events out is a bug; they still get an
        // outcome rather than vanishing.
        let failure = Failure {
            category: ErrorCategory::Other,
            partner_code: String::new(),
            message: "the partner adapter built no request for the event".into(),
            retry: Retry::Never,
        };
        delivery
            .outcomes
            .failed(&connector.id, connector.partner, &failure, count - sent);
    }
    let logged = receipts.iter().any(Option::is_some);
    if logged {
        let mut carried = vec![false; count];
        for (request, ended) in requests.iter().zip(ended) {
            for &index in &request.events {
                let Some(receipt) = receipts.get(index) else {
                    continue;
                };
                if std::mem::replace(&mut carried[index], true) {
                    continue;
                }
                match ended {
                    Ended::Outcome => delivery.outcomes.settle(receipt.as_ref()),
                    Ended::HandedBack => delivery.outcomes.hand_back(receipt.as_ref()),
                }
            }
        }
        // Events no request carried have their outcome (above).
        for (receipt, carried) in receipts.iter().zip(&carried) {
            if !carried {
                delivery.outcomes.settle(receipt.as_ref());
            }
        }
    }
    connector.release(count, bytes);
}

/// How a request's events ended on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// With an outcome, recorded.
    Outcome,
    /// Handed back to the log, no outcome here.
    HandedBack,
}

/// Sends one request until it has its outcome.
async fn send(connector: &Lane, delivery: &Delivery, request: &PartnerRequest) -> Ended {
    let count = request.events.len();
    let outcomes = &delivery.outcomes;
    let mut attempts = 0;
    loop {
        if connector.stopped_by().is_some() {
            return record_stopped(connector, delivery, count);
        }
        if !connector.breaker().allow(Instant::now()) {
            let failure = Failure {
                category: ErrorCategory::CircuitBreaker,
                partner_code: String::new(),
                message: "not sent: the connector's circuit breaker is open".into(),
                retry: Retry::Never,
            };
            outcomes.failed(&connector.id, connector.partner, &failure, count);
            return Ended::Outcome;
        }
        attempts += 1;
        let started = Instant::now();
        let verdict = match delivery.client.send(request).await {
            Ok(response) => connector.adapter.classify(&response, count),
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
            Verdict::Delivered => {
                outcomes.delivered(&connector.id, connector.partner, count);
                return Ended::Outcome;
            }
            Verdict::Partial { accepted, failure } => {
                let accepted = accepted.min(count);
                outcomes.delivered(&connector.id, connector.partner, accepted);
                outcomes.failed(&connector.id, connector.partner, &failure, count - accepted);
                return Ended::Outcome;
            }
            Verdict::Failed(failure) => failure,
        };
        let Some(delay) = delivery.retry.next_delay(attempts, failure.retry) else {
            tracing::debug!(connector = %connector.id, attempts, category = ?failure.category, code = %failure.partner_code, "delivery failed");
            outcomes.failed(&connector.id, connector.partner, &failure, count);
            return Ended::Outcome;
        };
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = connector.stopped() => {}
        }
    }
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

/// Counts `count` events that will not be sent because the connector
/// stopped: DROPPED when it was deactivated or deleted, FAILED (OTHER)
/// when the node is shutting down; nothing when the node hands them back
/// to the log.
fn record_stopped(connector: &Lane, delivery: &Delivery, count: usize) -> Ended {
    if count == 0 {
        return Ended::Outcome;
    }
    match connector.stopped_by() {
        Some(StopReason::HandBack) => return Ended::HandedBack,
        Some(StopReason::Shutdown) => {
            let failure = Failure {
                category: ErrorCategory::Other,
                partner_code: String::new(),
                message: "shutdown: the node stopped before the event was delivered".into(),
                retry: Retry::Never,
            };
            delivery
                .outcomes
                .failed(&connector.id, connector.partner, &failure, count);
        }
        Some(StopReason::Removed) | None => {
            delivery
                .outcomes
                .dropped(&connector.id, connector.partner, count);
        }
    }
    Ended::Outcome
}

/// Ends the queued events of a stopped connector (`receipts`, one per
/// event, of `bytes` in all) and gives back their room.
pub fn end_stopped(
    connector: &Lane,
    delivery: &Delivery,
    receipts: &[Option<crate::receipt::Receipt>],
    bytes: usize,
) {
    let count = receipts.len();
    let ended = record_stopped(connector, delivery, count);
    for receipt in receipts {
        match ended {
            Ended::Outcome => delivery.outcomes.settle(receipt.as_ref()),
            Ended::HandedBack => delivery.outcomes.hand_back(receipt.as_ref()),
        }
    }
    connector.release(count, bytes);
}
