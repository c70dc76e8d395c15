//! The loop that wakes the feed: this process's commits, other replicas'
//! NOTIFY, and a poll that heals whatever a lost notification missed. It
//! also keeps the nodes' `last_seen` fresh and prunes the change log.

use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::watch;
use tokio::time::{MissedTickBehavior, interval};

use super::{ConfigFeed, FeedSettings};
use crate::store::{Backend, NOTIFY_CHANNEL};

/// How often connected nodes' `last_seen` is refreshed.
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// How often acknowledged versions are written.
const FLUSH_NODES: Duration = Duration::from_secs(1);
const COMPACT_EVERY: Duration = Duration::from_secs(60);

impl ConfigFeed {
    /// Runs the feed until `stop` turns true.
    pub async fn run_publisher(self, settings: FeedSettings, mut stop: watch::Receiver<bool>) {
        let mut local = self.store.local_commits();
        let use_notify = settings.listen_notify && self.store.backend() == Backend::Postgres;
        let mut listener = None;
        let mut poll = interval(settings.poll_interval);
        let mut flush = interval(FLUSH_NODES);
        let mut last_heartbeat = tokio::time::Instant::now();
        let mut compact = interval(COMPACT_EVERY);
        for timer in [&mut poll, &mut flush, &mut compact] {
            timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
        }
        loop {
            if use_notify && listener.is_none() {
                listener = connect_listener(settings.database_url.expose()).await;
            }
            tokio::select! {
                () = super::stopped(&mut stop) => return,
                changed = local.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                alive = notified(&mut listener) => {
                    if !alive {
                        listener = None;
                    }
                }
                _ = poll.tick() => {}
                _ = flush.tick() => {
                    let heartbeat = last_heartbeat.elapsed() >= HEARTBEAT;
                    if heartbeat {
                        last_heartbeat = tokio::time::Instant::now();
                    }
                    self.nodes.flush(&self.store, heartbeat).await;
                    continue;
                }
                _ = compact.tick() => {
                    match self.store.compact_changes(settings.keep_changes).await {
                        Ok(horizon) => tracing::debug!(horizon, "change log pruned"),
                        Err(error) => tracing::warn!(%error, "cannot prune the change log"),
                    }
                    continue;
                }
            }
            if let Err(error) = self.publish_new().await {
                tracing::warn!(%error, "cannot read configuration changes; retrying at the next poll");
            }
        }
    }
}

async fn connect_listener(url: &str) -> Option<PgListener> {
    let connected = async {
        let mut listener = PgListener::connect(url).await?;
        listener.listen(NOTIFY_CHANNEL).await?;
        Ok::<_, sqlx::Error>(listener)
    };
    match connected.await {
        Ok(listener) => Some(listener),
        Err(error) => {
            tracing::warn!(%error, "cannot LISTEN for configuration changes; polling only until it can");
            None
        }
    }
}

/// Resolves when a notification arrives (true) or the listener's connection
/// was lost (false: what was sent meanwhile is gone, so the caller re-reads
/// the version either way). Never resolves without a listener.
async fn notified(listener: &mut Option<PgListener>) -> bool {
    let Some(listener) = listener else {
        return std::future::pending().await;
    };
    match listener.try_recv().await {
        Ok(Some(_)) => true,
        Ok(None) => {
            tracing::warn!("configuration NOTIFY connection lost; re-reading the version");
            true
        }
        Err(error) => {
            tracing::warn!(%error, "configuration NOTIFY listener failed");
            false
        }
    }
}
