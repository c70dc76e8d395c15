//! Counters in Redis. On a standalone Redis outcome batches are written by
//! group commit (`group_commit.rs`): one run of the apply script for the
//! batches that queued together. On a Redis Cluster a batch's keys span
//! many slots, so each connector's part is its own run of the same script
//! (a group of one) over the keys of its `{connector}` slot, deduplicated
//! per connector: the batch id is remembered in that slot too, so the
//! check and the counts move together when the slot moves to another
//! master. Either way a batch re-sent after a timeout is counted once.
//! Reads are one pipelined round trip (a connector's keys share a slot).

use std::collections::HashMap;
use std::sync::Arc;

use super::apply_script::{ApplyScript, FAILURES, FAILURES_PUSHED, Part, Written, seconds};
use super::connection::{RedisConnection, RedisTarget};
use super::group_commit::GroupCommit;
use super::{CounterError, MarkerTtls};
use crate::batch::{Applied, ConnectorBatch};

/// Keys deleted per UNLINK.
const UNLINK_CHUNK: usize = 512;

/// Redis-backed counters.
#[derive(Clone)]
pub struct RedisCounters {
    connection: RedisConnection,
    prefix: String,
    ttls: MarkerTtls,
    script: Arc<ApplyScript>,
    /// Batches go through group commit on a standalone Redis; on a Redis
    /// Cluster each connector's part is its own script.
    group: Option<GroupCommit>,
}

impl std::fmt::Debug for RedisCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCounters")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisCounters {
    /// Connects (with automatic reconnection) to the server at `url`, or
    /// with `cluster` to the Redis Cluster whose nodes `url` lists
    /// (comma-separated); every key starts with `prefix`.
    pub async fn connect(
        url: &str,
        prefix: &str,
        ttls: MarkerTtls,
        cluster: bool,
    ) -> Result<Self, CounterError> {
        Self::connect_to(&RedisTarget::new(url, cluster, None)?, prefix, ttls).await
    }

    /// Like [`RedisCounters::connect`], to `target` (one built with TLS
    /// settings, say).
    pub async fn connect_to(
        target: &RedisTarget,
        prefix: &str,
        ttls: MarkerTtls,
    ) -> Result<Self, CounterError> {
        let connection = target.connect().await?;
        // Group commit writes on a connection of its own: reads would
        // otherwise queue behind its scripts on the shared one.
        let group = match target.is_cluster() {
            false => Some(GroupCommit::start(
                target.connect().await?,
                ApplyScript::new(prefix, ttls),
            )),
            true => None,
        };
        Ok(Self {
            prefix: prefix.to_owned(),
            ttls,
            script: Arc::new(ApplyScript::new(prefix, ttls)),
            group,
            connection,
        })
    }

    /// Applies every part of batch `batch_id` with the batches written at
    /// the same time: at most once for the batch, each part unless its
    /// connector is tombstoned.
    pub(super) async fn apply_batch(
        &self,
        batch_id: &str,
        parts: Vec<ConnectorBatch>,
    ) -> Result<Vec<Applied>, CounterError> {
        match &self.group {
            Some(group) => group.apply(batch_id, parts).await,
            None => {
                futures::future::try_join_all(parts.iter().map(|part| self.apply(batch_id, part)))
                    .await
            }
        }
    }

    fn key(&self, connector_id: &str, suffix: &str) -> String {
        self.script.key(connector_id, suffix)
    }

    /// Applies one connector's part of batch `batch_id` (Redis Cluster):
    /// the apply script for a group of one, keyed in the connector's slot.
    pub(super) async fn apply(
        &self,
        batch_id: &str,
        batch: &ConnectorBatch,
    ) -> Result<Applied, CounterError> {
        let part = Part::of(batch);
        let batches = self.key(&batch.connector_id, "batches");
        let written = self
            .script
            .run(
                &mut self.connection.clone(),
                &batches,
                &[batch_id],
                std::slice::from_ref(&part),
            )
            .await?;
        Ok(match written {
            Written::Seen(_) => Applied::Duplicate,
            Written::Applied(fates) => fates.first().copied().unwrap_or(Applied::Applied),
        })
    }

    pub(super) async fn read(
        &self,
        connector_id: &str,
        buckets: &[String],
    ) -> Result<Vec<HashMap<String, i64>>, CounterError> {
        let mut pipe = redis::pipe();
        for bucket in buckets {
            pipe.hgetall(self.key(connector_id, bucket));
        }
        Ok(pipe.query_async(&mut self.connection.clone()).await?)
    }

    pub(super) async fn samples(
        &self,
        connector_id: &str,
    ) -> Result<HashMap<String, String>, CounterError> {
        let mut connection = self.connection.clone();
        Ok(redis::cmd("HGETALL")
            .arg(self.key(connector_id, "samples"))
            .query_async(&mut connection)
            .await?)
    }

    /// How many failures were ever pushed, and the list (newest first).
    pub(super) async fn recent_failures(
        &self,
        connector_id: &str,
    ) -> Result<(u64, Vec<Vec<u8>>), CounterError> {
        let (pushed, list): (Option<u64>, Vec<Vec<u8>>) = redis::pipe()
            .atomic()
            .get(self.key(connector_id, FAILURES_PUSHED))
            .lrange(self.key(connector_id, FAILURES), 0, -1)
            .query_async(&mut self.connection.clone())
            .await?;
        Ok((pushed.unwrap_or(0), list))
    }

    pub(super) async fn erase(
        &self,
        connector_id: &str,
        buckets: &[String],
    ) -> Result<(), CounterError> {
        let mut connection = self.connection.clone();
        // Tombstone first: a batch arriving while the buckets are removed is
        // discarded instead of recreating them.
        redis::cmd("SET")
            .arg(self.key(connector_id, "tomb"))
            .arg(1)
            .arg("EX")
            .arg(seconds(self.ttls.tombstone))
            .query_async::<()>(&mut connection)
            .await?;
        let mut keys: Vec<String> = buckets.iter().map(|b| self.key(connector_id, b)).collect();
        keys.push(self.key(connector_id, "samples"));
        keys.push(self.key(connector_id, FAILURES));
        keys.push(self.key(connector_id, FAILURES_PUSHED));
        keys.push(self.key(connector_id, "batches"));
        for chunk in keys.chunks(UNLINK_CHUNK) {
            redis::cmd("UNLINK")
                .arg(chunk)
                .query_async::<()>(&mut connection)
                .await?;
        }
        Ok(())
    }
}
