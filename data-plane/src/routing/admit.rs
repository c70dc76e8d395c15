//! Admission: each event is parsed once, routed to the ACTIVE connectors of
//! its workspace whose filter matches, transformed for each of them, and
//! queued on all of them or on none. An event is accepted only once it has
//! room in every lane it goes to, so the node never accepts and then drops;
//! without room it is refused with QUEUE_FULL. A transformation error is
//! that connector's outcome for the event, counted at once.
//!
//! In the durable mode events come from the log, already accepted: an event
//! waits for room instead of being refused, and each connector it is queued
//! on holds a share of its receipt.

use std::sync::Arc;
use std::time::{Duration, Instant};

use eventconnectors_proto::v1::{EventRejection, RejectReason};

use partners::adapter::Prepared;

use super::Dispatcher;
use crate::delivery::{self, Full, Lane, Queued, weight};
use crate::event::{self, RawEvent};
use crate::metrics;
use crate::outcomes::Receipt;
use partners::transform::TransformError;

/// What became of a batch of events.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Admission {
    /// Events accepted.
    pub accepted: u32,
    /// Events refused, with their index and reason.
    pub rejected: Vec<EventRejection>,
}

impl Admission {
    /// Whether events were refused for want of room, and none accepted.
    pub fn all_queue_full(&self) -> bool {
        self.accepted == 0
            && !self.rejected.is_empty()
            && self
                .rejected
                .iter()
                .any(|r| r.reason == RejectReason::QueueFull as i32)
    }

    pub(crate) fn reject(&mut self, index: usize, reason: RejectReason, detail: String) {
        self.rejected.push(EventRejection {
            index: index as u32,
            reason: reason as i32,
            detail,
        });
    }
}

type Target<'a> = (&'a Arc<Lane>, Result<Prepared, TransformError>);

impl Dispatcher {
    /// Admits `events` (JSON texts) from a producer allowed into `scope`
    /// (`None`: every workspace). Texts forwarded raw are moved into the
    /// queue, not copied.
    pub fn admit(&self, events: Vec<String>, scope: Option<&str>) -> Admission {
        let count = events.len();
        let mut admission = Admission::default();
        for (index, text) in events.into_iter().enumerate() {
            self.admit_one(index, text, scope, &mut admission);
        }
        metrics::received(count);
        admission
    }

    fn admit_one(
        &self,
        index: usize,
        mut text: String,
        scope: Option<&str>,
        admission: &mut Admission,
    ) {
        let event = match event::parse(&text, self.limits.max_event_bytes, scope) {
            Ok(event) => event,
            Err(rejected) => {
                metrics::rejected(rejected.reason, 1);
                admission.reject(index, rejected.reason, rejected.detail);
                return;
            }
        };
        if event.filled_workspace {
            // Partners forwarding the raw event see the workspace too.
            text = event.body.to_string();
        }
        let routes = self.routes.load();
        let targets = route(&routes, &event, text);
        if let Err(full) = self.reserve(&targets) {
            metrics::rejected(RejectReason::QueueFull, 1);
            let detail = match full {
                Full::Workspace => format!(
                    "workspace `{}` holds its share of the node's queues ({} MiB); retry later",
                    event.workspace_id(),
                    self.limits.workspace_bytes >> 20
                ),
                Full::Connector | Full::Node => {
                    "the node's queues for this event's connectors are full; retry later".into()
                }
            };
            admission.reject(index, RejectReason::QueueFull, detail);
            return;
        }
        self.enqueue(&event, targets.into_iter(), None);
        admission.accepted += 1;
    }

    /// Durable mode: queues the events of one message taken from the log
    /// on their connectors, waiting for room, each connector with a share
    /// of the message's `receipt`. Gives the message back if `stop` fires
    /// while an event waits. After `give_up_after` deliveries to nodes, its
    /// events are not sent but counted FAILED on their connectors.
    pub async fn admit_logged(
        &self,
        events: Vec<String>,
        receipt: Receipt,
        give_up_after: u64,
        stop: &tokio_util::sync::CancellationToken,
    ) {
        let outcomes = &self.delivery.outcomes;
        if receipt.delivered() > 1 {
            metrics::redelivered(events.len());
        }
        let giving_up = receipt.delivered() > give_up_after;
        for text in events {
            // Checked at ingest: anything else was not put in by a node.
            let event = match event::parse(&text, usize::MAX, None) {
                Ok(event) => event,
                Err(rejected) => {
                    tracing::error!(sequence = receipt.sequence(), reason = %rejected.detail, "the event log holds something that is not an event: skipped");
                    continue;
                }
            };
            // Owned, as the wait for room below may be long.
            let routes = self.routes.load_full();
            if giving_up {
                self.give_up(&routes, &event, &receipt);
                continue;
            }
            let targets = route(&routes, &event, text);
            if !self.wait_for_room(&targets, stop).await {
                outcomes.hand_back(Some(&receipt));
                return;
            }
            receipt.add_shares(targets.len());
            self.enqueue(&event, targets.into_iter(), Some(&receipt));
        }
        // The router's own share.
        outcomes.settle(Some(&receipt));
    }

    /// Takes room for an event in all its lanes, waiting for it; `false`
    /// when `stop` fired first.
    async fn wait_for_room(
        &self,
        targets: &[Target<'_>],
        stop: &tokio_util::sync::CancellationToken,
    ) -> bool {
        loop {
            let freed = self.node.freed();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if self.reserve(targets).is_ok() {
                return true;
            }
            tokio::select! {
                () = freed => {}
                // Room given back by a stopped lane does not notify.
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
                () = stop.cancelled() => return false,
            }
        }
    }

    /// Counts `event` FAILED on each of its connectors without sending it:
    /// its message was delivered to nodes too many times.
    fn give_up(&self, routes: &super::Routes, event: &RawEvent, receipt: &Receipt) {
        let failure = partners::adapter::Failure {
            category: eventconnectors_proto::v1::ErrorCategory::Other,
            partner_code: String::new(),
            message: format!(
                "gave up: the event was handed to nodes {} times without an outcome (each stopped or crashed while holding it)",
                receipt.delivered() - 1
            ),
            retry: partners::adapter::Retry::Never,
        };
        let outcomes = &self.delivery.outcomes;
        let lanes = routes.get(event.workspace_id());
        for lane in lanes.into_iter().flat_map(|lanes| lanes.iter()) {
            if lane.current().matches(event) {
                outcomes.failed(&lane.id, lane.partner, &failure, 1, Some(receipt));
                outcomes.list_failed(&lane.id, &failure, 0, std::iter::once(event.id()));
            }
        }
        tracing::error!(
            sequence = receipt.sequence(),
            event = event.id(),
            "event log: gave up on an event delivered too many times"
        );
        metrics::gave_up(1);
    }

    /// Takes room for the event in every lane it will be queued on, or
    /// none (and says which bound refused it).
    fn reserve(&self, targets: &[Target<'_>]) -> Result<(), Full> {
        let queued = targets
            .iter()
            .filter_map(|(lane, prepared)| Some((lane, weight(prepared.as_ref().ok()?))));
        for (taken, (lane, bytes)) in queued.clone().enumerate() {
            if let Err(full) = lane.try_reserve(bytes) {
                for (lane, bytes) in queued.take(taken) {
                    lane.release(1, bytes);
                }
                return Err(full);
            }
        }
        Ok(())
    }

    fn enqueue<'a>(
        &self,
        event: &RawEvent,
        targets: impl Iterator<Item = Target<'a>>,
        receipt: Option<&Receipt>,
    ) {
        let outcomes = &self.delivery.outcomes;
        let accepted_at = Instant::now();
        for (lane, prepared) in targets {
            match prepared {
                Ok(prepared) => {
                    let bytes = weight(&prepared);
                    let queued = Queued {
                        event: prepared,
                        accepted_at,
                        receipt: receipt.cloned(),
                    };
                    if let Err(queued) = lane.enqueue(queued) {
                        // The lane stopped between routing and now: the
                        // event ends as its stop says (DROPPED, FAILED
                        // for a shutdown, or back to the log).
                        delivery::end_stopped(lane, &self.delivery, &[queued.receipt], bytes);
                    }
                }
                Err(error) => {
                    outcomes.transformation_error(
                        &lane.id,
                        lane.partner,
                        &error,
                        event.id(),
                        receipt,
                    );
                    outcomes.settle(receipt);
                }
            }
        }
    }
}

/// The lanes of `event`'s workspace whose filter matches, each with the
/// event as its partner gets it (or why it cannot). `text` is the event
/// as it came; the last lane forwarding it raw takes it.
fn route<'a>(routes: &'a super::Routes, event: &RawEvent, mut text: String) -> Vec<Target<'a>> {
    // Each lane's configuration is read once, so a concurrent update
    // cannot change its mind between the checks below.
    let mut lanes: Vec<(&Arc<Lane>, _)> = routes
        .get(event.workspace_id())
        .map(|lanes| {
            lanes
                .iter()
                .map(|lane| (lane, lane.current()))
                .filter(|(_, current)| current.matches(event))
                .collect()
        })
        .unwrap_or_default();
    // Lanes forwarding the raw text go last: the last one takes it.
    lanes.sort_by_key(|(_, current)| current.transformer.forwards_raw());
    let last = lanes.len().saturating_sub(1);
    lanes
        .into_iter()
        .enumerate()
        .map(|(n, (lane, current))| {
            let prepared = if n == last || !current.transformer.forwards_raw() {
                lane.prepare(&current, event, &mut text)
            } else {
                lane.prepare(&current, event, &mut text.clone())
            };
            (lane, prepared)
        })
        .collect()
}
