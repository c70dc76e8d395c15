//! The loops that keep the feed going: the publisher, woken by this
//! process's commits, other replicas' NOTIFY, and a poll that heals whatever
//! a lost notification missed; and the node bookkeeping, which writes acks
//! and heartbeats on its own schedule so it never delays a change.

use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior, interval};

use server_kit::shutdown::stopped;

use super::{ConfigFeed, FeedSettings};
use crate::store::{Backend, NOTIFY_CHANNEL};

/// How often connected nodes' `last_seen` is refreshed.
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// How often acknowledged versions are written.
const FLUSH_NODES: Duration = Duration::from_secs(1);
const COMPACT_EVERY: Duration = Duration::from_secs(60);
/// How often the snapshot kept in memory (served while the database is
/// down) is checked: it is brought to the version published last once no
/// change came for this long.
const SNAPSHOT_REFRESH: Duration = Duration::from_secs(1);

/// Longest wait for a LISTEN connection; then the poll carries on alone.
const LISTEN_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const LISTEN_RETRY_MAX: Duration = Duration::from_secs(30);

impl ConfigFeed {
    /// Publishes changes until `stop` turns true.
    pub async fn run_publisher(self, settings: FeedSettings, mut stop: watch::Receiver<bool>) {
        // Beside the publisher, not in its loop: rebuilding a large
        // snapshot must not hold up the next change.
        tokio::spawn(self.clone().run_snapshot_refresh(stop.clone()));
        let mut published = self.start;
        let mut local = self.store.local_commits();
        let use_notify = settings.listen_notify && self.store.backend() == Backend::Postgres;
        let mut listener = None;
        let mut listen_retry = Duration::from_secs(1);
        let mut next_listen_attempt = Instant::now();
        let mut poll = interval(settings.poll_interval);
        let mut compact = interval(COMPACT_EVERY);
        for timer in [&mut poll, &mut compact] {
            timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
        }
        loop {
            if use_notify && listener.is_none() && Instant::now() >= next_listen_attempt {
                listener = connect_listener(settings.database_url.expose()).await;
                if listener.is_some() {
                    listen_retry = Duration::from_secs(1);
                    // Whatever was committed while not listening is read
                    // now, after LISTEN: a commit in between notifies.
                    if let Err(error) = self.publish_new(&mut published).await {
                        tracing::warn!(%error, "cannot read configuration changes; retrying at the next poll");
                    }
                } else {
                    next_listen_attempt = Instant::now() + listen_retry;
                    listen_retry = (listen_retry * 2).min(LISTEN_RETRY_MAX);
                }
            }
            tokio::select! {
                () = stopped(&mut stop) => return,
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
                _ = compact.tick() => {
                    match self.store.compact_changes(settings.keep_changes).await {
                        Ok(horizon) => tracing::debug!(horizon, "change log pruned"),
                        Err(error) => tracing::warn!(%error, "cannot prune the change log"),
                    }
                    continue;
                }
            }
            if let Err(error) = self.publish_new(&mut published).await {
                tracing::warn!(%error, "cannot read configuration changes; retrying at the next poll");
            }
        }
    }

    /// Keeps the snapshot in memory at the version published last (see
    /// [`ConfigFeed::catch_up`]) until `stop` turns true. It is rebuilt once
    /// changes pause for a tick, so a burst of changes does not pay for a
    /// full read of the world each second.
    async fn run_snapshot_refresh(self, mut stop: watch::Receiver<bool>) {
        let mut refresh = interval(SNAPSHOT_REFRESH);
        refresh.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut seen = None;
        loop {
            tokio::select! {
                () = stopped(&mut stop) => return,
                _ = refresh.tick() => {
                    let published = self.published_version();
                    if seen == Some(published) {
                        self.refresh_snapshot().await;
                    }
                    seen = Some(published);
                }
            }
        }
    }

    /// Writes node acks every second and heartbeats every [`HEARTBEAT`]
    /// until `stop` turns true.
    pub async fn run_node_bookkeeping(self, mut stop: watch::Receiver<bool>) {
        let mut flush = interval(FLUSH_NODES);
        flush.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_heartbeat = Instant::now();
        loop {
            tokio::select! {
                () = stopped(&mut stop) => return,
                _ = flush.tick() => {}
            }
            let heartbeat = last_heartbeat.elapsed() >= HEARTBEAT;
            if heartbeat {
                last_heartbeat = Instant::now();
            }
            self.nodes.flush(&self.store, heartbeat).await;
        }
    }
}

async fn connect_listener(url: &str) -> Option<PgListener> {
    let connected = async {
        let mut listener = PgListener::connect(url).await?;
        listener.listen(NOTIFY_CHANNEL).await?;
        Ok::<_, sqlx::Error>(listener)
    };
    match tokio::time::timeout(LISTEN_CONNECT_TIMEOUT, connected).await {
        Ok(Ok(listener)) => Some(listener),
        Ok(Err(error)) => {
            tracing::warn!(%error, "cannot LISTEN for configuration changes; polling only until it can");
            None
        }
        Err(_) => {
            tracing::warn!("LISTEN connection timed out; polling only until it can");
            None
        }
    }
}

/// Resolves when a notification arrives (true) or the listener's connection
/// failed or was lost (false): the caller then connects a new listener and
/// re-reads the version once it listens, so a commit made while it was
/// away, or while it reconnects, is not missed. Never resolves without a
/// listener.
async fn notified(listener: &mut Option<PgListener>) -> bool {
    let Some(listener) = listener else {
        return std::future::pending().await;
    };
    match listener.try_recv().await {
        Ok(Some(_)) => true,
        Ok(None) => {
            tracing::warn!(
                "configuration NOTIFY connection lost; reconnecting, then re-reading the version"
            );
            false
        }
        Err(error) => {
            tracing::warn!(%error, "configuration NOTIFY listener failed");
            false
        }
    }
}
