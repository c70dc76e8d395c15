//! Counters in Redis. On a standalone Redis a whole outcome batch is one Lua
//! script: batch-id dedupe (a sorted set of the batch ids seen, scored by
//! when each is forgotten), one EXISTS over every connector's tombstone,
//! then each connector's HINCRBYs, EXPIREATs and samples; atomic, so a batch
//! re-sent after a timeout is counted once. With Redis Cluster a batch's
//! keys span many slots, so each connector's part is its own script over
//! the keys of its `{connector}` slot, deduplicated per connector. Reads
//! are one pipelined round trip.

use std::collections::HashMap;
use std::fmt::Write as _;

use redis::aio::ConnectionManager;

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
    local by = tonumber(ARGV[a + 1])
    local value = redis.call('HINCRBY', KEYS[k], ARGV[a], by)
    -- A field that starts at this increment may be a new key: give it its
    -- (absolute, so repeatable) expiry. Existing keys already have one.
    if i == 1 and value == by then redis.call('EXPIREAT', KEYS[k], expire_at) end
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

const APPLY_BATCH: &str = r"
-- KEYS[1] seen batches (zset: id -> when forgotten), then per part: tombstone,
-- samples (only when the part has samples), buckets.
-- ARGV[1] dedupe ttl s, ARGV[2] samples ttl s, ARGV[3] now s, ARGV[4] batch id,
-- ARGV[5] prune (0/1), ARGV[6] parts, then per part: bucket count, sample count;
-- then per part: per bucket expire-at s, n, n x (field, by) -- n = -1: the same
-- fields as the bucket before -- then per sample (field, message).
-- Returns 0 for a batch seen before, else per part 1 (applied) or 2 (tombstoned).
local call = redis.call
if ARGV[5] == '1' then call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3]) end
local forget_at = tonumber(ARGV[3]) + tonumber(ARGV[1])
if call('ZADD', KEYS[1], 'NX', forget_at, ARGV[4]) == 0 then
  if tonumber(call('ZSCORE', KEYS[1], ARGV[4])) > tonumber(ARGV[3]) then return 0 end
  call('ZADD', KEYS[1], 'XX', forget_at, ARGV[4])
end
call('EXPIRE', KEYS[1], ARGV[1])
local parts = tonumber(ARGV[6])
local buckets, samples, tombs = {}, {}, {}
local k = 2
for p = 1, parts do
  buckets[p] = tonumber(ARGV[5 + 2 * p])
  samples[p] = tonumber(ARGV[6 + 2 * p])
  tombs[p] = KEYS[k]
  k = k + 1 + buckets[p] + (samples[p] > 0 and 1 or 0)
end
local any_tomb = parts > 0 and call('EXISTS', unpack(tombs)) > 0
local result = {}
k = 2
local a = 7 + 2 * parts
for p = 1, parts do
  local tombstoned = any_tomb and call('EXISTS', KEYS[k]) == 1
  k = k + 1
  local samples_key
  if samples[p] > 0 then
    samples_key = KEYS[k]
    k = k + 1
  end
  local first, last = 0, -1
  for _ = 1, buckets[p] do
    local key = KEYS[k]
    local expire_at = ARGV[a]
    local n = tonumber(ARGV[a + 1])
    a = a + 2
    if n >= 0 then
      first, last = a, a + 2 * n - 2
      a = a + 2 * n
    end
    if last >= first and not tombstoned then
      -- A first field starting at this increment may be a new key: give it
      -- its (absolute, so repeatable) expiry. Existing keys have one.
      local by = ARGV[first + 1]
      if call('HINCRBY', key, ARGV[first], by) == tonumber(by) then
        call('EXPIREAT', key, expire_at)
      end
      for i = first + 2, last, 2 do
        call('HINCRBY', key, ARGV[i], ARGV[i + 1])
      end
    end
    k = k + 1
  end
  if samples_key and not tombstoned then
    for i = a, a + 2 * samples[p] - 2, 2 do
      call('HSET', samples_key, ARGV[i], ARGV[i + 1])
    end
    call('EXPIRE', samples_key, ARGV[2])
  end
  a = a + 2 * samples[p]
  result[p] = tombstoned and 2 or 1
end
return result
";
/// Redis-backed counters.
#[derive(Clone)]
pub struct RedisCounters {
    connection: ConnectionManager,
    prefix: String,
    ttls: MarkerTtls,
    script: redis::Script,
    batch_script: redis::Script,
    cluster: bool,
}

impl std::fmt::Debug for RedisCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCounters")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn prune_this_time() -> bool {
    use std::sync::atomic::{AtomicU32, Ordering};
    static WRITES: AtomicU32 = AtomicU32::new(0);
    WRITES.fetch_add(1, Ordering::Relaxed).is_multiple_of(16)
}

fn seconds(duration: std::time::Duration) -> u64 {
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
        let connection = ConnectionManager::new(client).await?;
        Ok(Self {
            connection,
            prefix: prefix.to_owned(),
            ttls,
            script: redis::Script::new(APPLY),
            batch_script: redis::Script::new(APPLY_BATCH),
            cluster,
        })
    }

    /// Whether parts are applied one connector at a time (Redis Cluster).
    pub fn cluster(&self) -> bool {
        self.cluster
    }

    /// Applies every part of batch `batch_id` in one script: at most once
    /// for the batch, each part unless its connector is tombstoned.
    pub(super) async fn apply_batch(
        &self,
        batch_id: &str,
        parts: &[ConnectorBatch],
    ) -> Result<Vec<Applied>, CounterError> {
        let keys = 1 + parts
            .iter()
            .map(|part| 1 + usize::from(!part.samples.is_empty()) + part.writes.len())
            .sum::<usize>();
        let mut command = redis::cmd("EVALSHA");
        command.arg(self.batch_script.get_hash()).arg(keys);
        command.arg(format!("{}:batches", self.prefix));
        // One buffer for every key name: the command copies each argument.
        let mut key = String::with_capacity(96);
        let mut push_key = |command: &mut redis::Cmd, connector: &str, suffix: &str| {
            key.clear();
            let _ = write!(key, "{}:{{{connector}}}:{suffix}", self.prefix);
            command.arg(key.as_str());
        };
        for part in parts {
            push_key(&mut command, &part.connector_id, "tomb");
            if !part.samples.is_empty() {
                push_key(&mut command, &part.connector_id, "samples");
            }
            for write in &part.writes {
                push_key(&mut command, &part.connector_id, &write.bucket);
            }
        }
        command
            .arg(seconds(self.ttls.dedupe))
            .arg(seconds(self.ttls.samples))
            .arg(crate::ranges::now())
            .arg(batch_id)
            .arg(u8::from(prune_this_time()))
            .arg(parts.len());
        for part in parts {
            command.arg(part.writes.len()).arg(part.samples.len());
        }
        for part in parts {
            let mut previous: Option<&[(String, i64)]> = None;
            for write in &part.writes {
                command.arg(write.expire_at);
                // An hour bucket and its day bucket usually get the same
                // increments: sent once.
                if previous == Some(write.fields.as_slice()) {
                    command.arg(-1);
                } else {
                    command.arg(write.fields.len());
                    for (field, by) in &write.fields {
                        command.arg(field.as_str()).arg(*by);
                    }
                }
                previous = Some(&write.fields);
            }
            for (field, message) in &part.samples {
                command.arg(field.as_str()).arg(message.as_str());
            }
        }
        let mut connection = self.connection.clone();
        let reply: redis::Value = match command.query_async(&mut connection).await {
            Err(error) if error.kind() == redis::ErrorKind::NoScriptError => {
                self.batch_script
                    .prepare_invoke()
                    .load_async(&mut connection)
                    .await?;
                command.query_async(&mut connection).await?
            }
            result => result?,
        };
        Ok(match reply {
            redis::Value::Array(items) => items
                .iter()
                .map(|item| match item {
                    redis::Value::Int(2) => Applied::Tombstoned,
                    _ => Applied::Applied,
                })
                .collect(),
            _ => vec![Applied::Duplicate; parts.len()],
        })
    }

    fn key(&self, connector_id: &str, suffix: &str) -> String {
        format!("{}:{{{connector_id}}}:{suffix}", self.prefix)
    }

    pub(super) async fn apply(&self, batch: &ConnectorBatch) -> Result<Applied, CounterError> {
        let c = &batch.connector_id;
        let mut invocation = self.script.prepare_invoke();
        invocation
            .key(self.key(c, "tomb"))
            .key(self.key(c, "batches"))
            .key(self.key(c, "samples"))
            .arg(seconds(self.ttls.dedupe))
            .arg(seconds(self.ttls.samples))
            .arg(crate::ranges::now())
            .arg(&batch.batch_id)
            // Forgotten batch ids are pruned on one write in sixteen.
            .arg(u8::from(prune_this_time()));
        for write in &batch.writes {
            invocation
                .key(self.key(c, &write.bucket))
                .arg(write.expire_at)
                .arg(write.fields.len());
            for (field, by) in &write.fields {
                invocation.arg(field).arg(*by);
            }
        }
        invocation.arg(batch.samples.len());
        for (field, message) in &batch.samples {
            invocation.arg(field).arg(message);
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
