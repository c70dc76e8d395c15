//! A connector's worker: takes events off its queue into batches of up to
//! the partner's limit, waiting at most the linger for a batch to fill, and
//! hands each batch to a delivery task under the connector's concurrency
//! limit (its bulkhead: a slow partner holds its own permits, nobody
//! else's). When the connector stops, what is still queued ends at once:
//! DROPPED when it was deactivated or deleted, FAILED when the node shuts
//! down, or (durable mode) back to the log for another node.

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};
use tokio::time::{Instant, sleep_until};

use super::Delivery;
use super::attempts::{deliver, end_stopped};
use super::{Lane, Queued, weight};

/// Runs `connector`'s lane until it is stopped and its queue is emptied.
pub async fn run(
    connector: Arc<Lane>,
    mut queue: mpsc::UnboundedReceiver<Queued>,
    delivery: Arc<Delivery>,
) {
    let permits = Arc::new(Semaphore::new(delivery.concurrency.max(1)));
    let max = connector.max_batch;
    loop {
        let first = tokio::select! {
            biased;
            () = connector.stopped() => break,
            next = queue.recv() => match next {
                Some(first) => first,
                None => break,
            },
        };
        // The linger counts from when the oldest event was accepted, so no
        // event waits longer than it for its batch to fill.
        let deadline = Instant::from_std(first.accepted_at) + delivery.linger;
        let mut batch = Vec::with_capacity(max.min(1024));
        batch.push(first);
        let mut stopped = false;
        while batch.len() < max {
            if let Ok(next) = queue.try_recv() {
                batch.push(next);
                continue;
            }
            tokio::select! {
                biased;
                () = connector.stopped() => { stopped = true; break }
                () = sleep_until(deadline) => break,
                next = queue.recv() => match next {
                    Some(next) => batch.push(next),
                    None => break,
                },
            }
        }
        let permit = if stopped {
            None
        } else {
            tokio::select! {
                biased;
                () = connector.stopped() => None,
                permit = Arc::clone(&permits).acquire_owned() => permit.ok(),
            }
        };
        let Some(permit) = permit else {
            let bytes = batch.iter().map(|queued| weight(&queued.event)).sum();
            let receipts: Vec<_> = batch.into_iter().map(|queued| queued.receipt).collect();
            end_stopped(&connector, &delivery, &receipts, bytes);
            break;
        };
        // Events that arrived while waiting for a permit join the batch.
        while batch.len() < max {
            let Ok(next) = queue.try_recv() else { break };
            batch.push(next);
        }
        let connector = Arc::clone(&connector);
        let shared = Arc::clone(&delivery);
        delivery.tasks.spawn(async move {
            deliver(&connector, &shared, batch).await;
            drop(permit);
        });
    }
    // After `close`, `recv` still yields what senders already committed to
    // (a `try_recv` loop could miss a send in progress), then `None`.
    queue.close();
    let (mut left, mut bytes) = (Vec::new(), 0);
    while let Some(queued) = queue.recv().await {
        bytes += weight(&queued.event);
        left.push(queued.receipt);
    }
    end_stopped(&connector, &delivery, &left, bytes);
}
