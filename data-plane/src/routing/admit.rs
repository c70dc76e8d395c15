//! Admission: each event is parsed once, routed to the ACTIVE connectors of
//! its workspace whose filter matches, transformed for each of them, and
//! queued on all of them or on none. An event is accepted only once it has
//! room in every lane it goes to, so the node never accepts and then drops;
//! without room it is refused with QUEUE_FULL. A transformation error is
//! that connector's outcome for the event, counted at once.

use std::sync::Arc;
use std::time::Instant;

use eventconnectors_proto::v1::{EventRejection, RejectReason};

use partners::adapter::Prepared;

use super::Dispatcher;
use crate::delivery::{self, Full, Lane, Queued, weight};
use crate::event::{self, RawEvent};
use crate::metrics;
use crate::transform::TransformError;

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

    fn reject(&mut self, index: usize, reason: RejectReason, detail: String) {
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
        // Each lane's configuration is read once, so a concurrent update
        // cannot change its mind between the checks below.
        let mut lanes: Vec<(&Arc<Lane>, _)> = routes
            .get(event.workspace_id())
            .map(|lanes| {
                lanes
                    .iter()
                    .map(|lane| (lane, lane.current()))
                    .filter(|(_, current)| current.matches(&event))
                    .collect()
            })
            .unwrap_or_default();
        // Lanes forwarding the raw text go last: the last one takes it.
        lanes.sort_by_key(|(_, current)| current.transformer.forwards_raw());
        let last = lanes.len().saturating_sub(1);
        let targets: Vec<Target<'_>> = lanes
            .into_iter()
            .enumerate()
            .map(|(n, (lane, current))| {
                let prepared = if n == last || !current.transformer.forwards_raw() {
                    lane.prepare(&current, &event, &mut text)
                } else {
                    lane.prepare(&current, &event, &mut text.clone())
                };
                (lane, prepared)
            })
            .collect();
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
        self.enqueue(&event, targets.into_iter());
        admission.accepted += 1;
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

    fn enqueue<'a>(&self, event: &RawEvent, targets: impl Iterator<Item = Target<'a>>) {
        let outcomes = &self.delivery.outcomes;
        let accepted_at = Instant::now();
        for (lane, prepared) in targets {
            match prepared {
                Ok(prepared) => {
                    let bytes = weight(&prepared);
                    let queued = Queued {
                        event: prepared,
                        accepted_at,
                    };
                    if lane.enqueue(queued).is_err() {
                        // The lane stopped between routing and now: the
                        // event ends as its stop says (DROPPED, or FAILED
                        // for a shutdown).
                        delivery::end_stopped(lane, &self.delivery, 1, bytes);
                    }
                }
                Err(error) => {
                    outcomes.transformation_error(&lane.id, lane.partner, &error, event.id());
                }
            }
        }
    }
}
