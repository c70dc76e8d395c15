//! Counters in Redis. On a standalone Redis outcome batches are written by
//! group commit (`group_commit.rs`): one Lua script for the batches that
//! queued together. With Redis Cluster a batch's keys span many slots, so
//! each connector's part is its own script over the keys of its
//! `{connector}` slot, deduplicated per connector. Either way a batch
//! re-sent after a timeout is counted once. Reads are one pipelined round
//! trip.

use std::collections::HashMap;

use redis::aio::ConnectionManager;

use super::group_commit::GroupCommit;
use super::{Applied, ConnectorBatch, CounterError, MarkerTtls};

/// Keys deleted per UNLINK.
const UNLINK_CHUNK: usize = 512;

const APPLY: &str = r"
-- KEYS[1] tombstone, KEYS[2] seen batches (zset: id -> when forgotten), KEYS[3] samples, KEYS[4..] buckets
-- ARGV[1] dedupe ttl s, ARGV[2] samples ttl s, ARGV[3] now s, ARGV[4] batch id, ARGV[5] prune (0/1),
-- then per bucket: expire-at s, n, n x (field, by), then m, m x (field, message)
if redis.call('EXISTS', KEYS[1]) == 1 then return 2 end
if ARGV[5] == '1' then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3]) end
local forget_at = tonumber(ARGV[3]) + tonumber(ARGV[1])
if redis.call('ZADD', KEYS[2], 'NX', forget_at, ARGV[4]) == 0 then
  -- Seen before; unless that was long enough ago to be forgotten (not yet pruned).
  if tonumber(redis.call('ZSCORE', KEYS[2], ARGV[4])) > tonumber(ARGV[3]) then return 0 end
  redis.call('ZADD', KEYS[2], 'XX', forget_at, ARGV[4])
end
redis.call('EXPIRE', KEYS[2], ARGV[1])
local a = 6
for k = 4, #KEYS do
  local expire_at = ARGV[a]
  local n = tonumber(ARGV[a + 1])
  a = a + 2
  for i = 1, n do
    -- The increment goes as sent (a Lua number loses digits past 2^53);
    -- pcall: a counter at the i64 limit stays there instead of aborting.
    local by = ARGV[a + 1]
    local value = redis.pcall('HINCRBY', KEYS[k], ARGV[a], by)
    -- A field that starts at this increment may be a new key: give it its
    -- (absolute, so repeatable) expiry. Existing keys already have one.
    if i == 1 and value == tonumber(by) then redis.call('EXPIREAT', KEYS[k], expire_at) end
    a = a + 2
  end
end
local m = tonumber(ARGV[a])
a = a + 1
if m > 0 then
  for _ = 1, m do
    redis.call('HSET', KEYS[3], ARGV[a], ARGV[a + 1])
    a = a + 2
  end
  redis.call('EXPIRE', KEYS[3], ARGV[2])
end
return 1
";

/// Redis-backed counters.
#[derive(Clone)]
pub struct RedisCounters {
    connection: ConnectionManager,
    prefix: String,
    ttls: MarkerTtls,
    script: redis::Script,
    /// Batches go through group commit on a standalone Redis; with Redis
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

pub(super) fn prune_this_time() -> bool {
    use std::sync::atomic::{AtomicU32, Ordering};
    static WRITES: AtomicU32 = AtomicU32::new(0);
    WRITES.fetch_add(1, Ordering::Relaxed).is_multiple_of(16)
}

pub(super) fn seconds(duration: std::time::Duration) -> u64 {
    duration.as_secs().max(1)
}

impl RedisCounters {
    /// Connects (with automatic reconnection) to `url`; every key starts
    /// with `prefix`. `cluster`: the keys of one batch may live on
    /// different nodes, so each connector's part is applied on its own.
    pub async fn connect(
        url: &str,
        prefix: &str,
        ttls: MarkerTtls,
        cluster: bool,
    ) -> Result<Self, CounterError> {
        let client = redis::Client::open(url)?;
        let connection = ConnectionManager::new(client.clone()).await?;
        // Group commit writes on a connection of its own: reads would
        // otherwise queue behind its scripts on the shared one.
        let group = match cluster {
            false => Some(GroupCommit::start(
                ConnectionManager::new(client).await?,
                prefix,
                ttls,
            )),
            true => None,
        };
        Ok(Self {
            prefix: prefix.to_owned(),
            ttls,
            script: redis::Script::new(APPLY),
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
        format!("{}:{{{connector_id}}}:{suffix}", self.prefix)
    }

    pub(super) async fn apply(
        &self,
        batch_id: &str,
        batch: &ConnectorBatch,
    ) -> Result<Applied, CounterError> {
        let c = &batch.connector_id;
        let mut invocation = self.script.prepare_invoke();
        invocation
            .key(self.key(c, "tomb"))
            .key(self.key(c, "batches"))
            .key(self.key(c, "samples"))
            .arg(seconds(self.ttls.dedupe))
            .arg(seconds(self.ttls.samples))
            .arg(crate::ranges::now())
            .arg(batch_id)
            // Forgotten batch ids are pruned on one write in sixteen.
            .arg(u8::from(prune_this_time()));
        for write in &batch.writes {
            invocation
                .key(self.key(c, &write.bucket))
                .arg(write.expire_at)
                .arg(write.fields.len());
            for (field, by) in &write.fields {
                invocation.arg(&**field).arg(*by);
            }
        }
        invocation.arg(batch.samples.len());
        for (field, message) in &batch.samples {
            invocation.arg(&**field).arg(message);
        }
        let outcome: i64 = invocation
            .invoke_async(&mut self.connection.clone())
            .await?;
        Ok(match outcome {
            1 => Applied::Applied,
            2 => Applied::Tombstoned,
            _ => Applied::Duplicate,
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
