//! Streams sealed outcome batches to StatsService.ReportOutcomes and
//! forgets each one when it is acknowledged. While the stats service is
//! away (or not configured) batches are kept, bounded, and re-sent on the
//! next stream: the service applies a batch id once, so a re-send after a
//! lost ack is harmless. Delivery never waits for any of this.

use std::collections::HashSet;
use std::time::Duration;

use eventconnectors_proto::v1::stats_service_client::StatsServiceClient;
use server_kit::auth::Secret;
use server_kit::auth::bearer;
use server_kit::backoff::{Attempts, Backoff};
use server_kit::shutdown::stopped;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_stream::wrappers::ReceiverStream;

use super::Outcomes;
use crate::metrics;

/// How long the final flush waits for acknowledgements on shutdown.
const FINAL_FLUSH: Duration = Duration::from_secs(5);

/// Where and how outcomes are reported.
#[derive(Debug, Clone)]
pub struct ReporterSettings {
    /// Stats service URL; `None` keeps outcomes on the node (bounded).
    pub url: Option<String>,
    /// The outcomes token (set whenever `url` is).
    pub outcomes_token: Option<Secret>,
    /// TLS for an `https://` URL (and the node's client certificate).
    pub tls: server_kit::tls::UpstreamTls,
    /// How often outcomes are sealed into a batch.
    pub flush_interval: Duration,
    /// Reconnection backoff bounds.
    pub backoff: (Duration, Duration),
}

#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("invalid stats URL: {0}")]
    Url(#[from] tonic::transport::Error),
    #[error("{0}")]
    Status(#[from] tonic::Status),
    #[error(transparent)]
    Token(#[from] server_kit::auth::UnsendableToken),
    #[error("the stats service closed the stream")]
    Closed,
    #[error("the last flush did not finish in time")]
    TimedOut,
}

/// Seals what was recorded; `reported` says whether a stats service will
/// acknowledge it (durable mode: events whose outcomes need no more wait
/// leave the log).
fn seal(outcomes: &Outcomes, reported: bool) {
    {
        let mut pending = outcomes.pending();
        pending.seal();
        metrics::outcomes_lost(pending.overflow());
    }
    outcomes.release_settled(reported);
}

/// Reports `outcomes` until `stop` turns true, then seals and flushes what
/// is left (waiting a few seconds for acknowledgements).
pub async fn report(
    outcomes: Outcomes,
    settings: ReporterSettings,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(settings.flush_interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let (min, max) = settings.backoff;
    let mut backoff = Attempts::new(Backoff::new(min, max).with_floor(min));
    let Some(url) = settings.url.clone() else {
        loop {
            tokio::select! {
                () = stopped(&mut stop) => break,
                _ = tick.tick() => seal(&outcomes, false),
            }
        }
        seal(&outcomes, false);
        let kept = outcomes.pending().unacknowledged().count();
        tracing::warn!(
            batches = kept,
            "no stats service configured: outcomes not reported"
        );
        return;
    };
    loop {
        // Once stopped, one last stream, bounded, for what is left (a session
        // that starts stopped seals, sends and waits for the acks).
        let last = *stop.borrow();
        let attempt = session(
            &outcomes,
            &url,
            &settings,
            &mut tick,
            &mut stop,
            &mut backoff,
        );
        let result = if last {
            tokio::time::timeout(FINAL_FLUSH * 2, attempt)
                .await
                .unwrap_or(Err(SessionError::TimedOut))
        } else {
            attempt.await
        };
        match result {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, "outcome stream failed; outcomes are kept and re-sent")
            }
        }
        if last {
            break;
        }
        if !*stop.borrow() {
            let retry_at = Instant::now() + backoff.next_delay();
            loop {
                tokio::select! {
                    () = stopped(&mut stop) => break,
                    _ = tick.tick() => seal(&outcomes, true),
                    () = tokio::time::sleep_until(retry_at) => break,
                }
            }
        }
    }
    seal(&outcomes, true);
    let kept = outcomes.pending().unacknowledged().count();
    if kept > 0 {
        tracing::error!(
            batches = kept,
            "stopping with outcomes the stats service never acknowledged"
        );
    }
}

/// One stream; `Ok` once stopped and flushed.
async fn session(
    outcomes: &Outcomes,
    url: &str,
    settings: &ReporterSettings,
    tick: &mut tokio::time::Interval,
    stop: &mut watch::Receiver<bool>,
    backoff: &mut Attempts,
) -> Result<(), SessionError> {
    let channel = server_kit::upstream::connect(url, &settings.tls).await?;
    let (batches, outbound) = mpsc::channel(64);
    let token = settings
        .outcomes_token
        .as_ref()
        .map_or("", |token| token.expose());
    let request = bearer(ReceiverStream::new(outbound), token)?;
    let mut acks = StatsServiceClient::new(channel)
        .report_outcomes(request)
        .await?
        .into_inner();
    tracing::info!(%url, "reporting outcomes");
    let mut sent = HashSet::new();
    let mut stopping: Option<Instant> = None;
    loop {
        let unsent: Vec<_> = outcomes
            .pending()
            .unacknowledged()
            .filter(|batch| !sent.contains(&batch.batch_id))
            .cloned()
            .collect();
        for batch in unsent {
            sent.insert(batch.batch_id.clone());
            if batches.send(batch).await.is_err() {
                return Err(SessionError::Closed);
            }
        }
        if stopping.is_some() {
            // Batches dropped by the bound will never be acknowledged.
            let pending = outcomes.pending();
            sent.retain(|id: &String| pending.unacknowledged().any(|b| &b.batch_id == id));
        }
        if let Some(deadline) = stopping
            && (sent.is_empty() || Instant::now() >= deadline)
        {
            if !sent.is_empty() {
                tracing::error!(
                    batches = sent.len(),
                    "outcome batches not acknowledged before exit"
                );
            }
            return Ok(());
        }
        tokio::select! {
            _ = tick.tick(), if stopping.is_none() => seal(outcomes, true),
            ack = acks.message() => match ack? {
                Some(ack) => {
                    backoff.reset();
                    if ack.rejected.is_empty() {
                        outcomes.pending().acknowledge(&ack.batch_id);
                    } else {
                        let mut pending = outcomes.pending();
                        let lost = pending.reject(&ack.batch_id);
                        metrics::outcomes_rejected(pending.rejected());
                        tracing::error!(batch_id = %ack.batch_id, lost, reason = %ack.rejected, "the stats service refused an outcome batch as invalid: dropped, not re-sent");
                    }
                    outcomes.release_settled(true);
                    sent.remove(&ack.batch_id);
                }
                None => return Err(SessionError::Closed),
            },
            () = stopped(stop), if stopping.is_none() => {
                seal(outcomes, true);
                stopping = Some(Instant::now() + FINAL_FLUSH);
            }
            () = tokio::time::sleep_until(stopping.unwrap_or_else(Instant::now)), if stopping.is_some() => {}
        }
    }
}
