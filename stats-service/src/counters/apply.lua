-- Applies outcome counts: one or more batches, merged per connector,
-- bucket and field, atomically and at most once per batch id. Every Redis
-- writer of the stats service runs this one script: group commit on a
-- standalone Redis (many batches, many connectors), and Redis Cluster mode
-- (one batch's part for one connector, a group of one, whose keys all sit
-- in that connector's hash slot).
--
-- KEYS[1] seen batches (zset: id -> when forgotten), then per part: tombstone,
-- samples (only when the part has samples), recent failures (list) and how
-- many were ever pushed (counter; both only when the part has failures), buckets.
-- ARGV[1] dedupe ttl s, ARGV[2] samples (and failures) ttl s, ARGV[3] now s,
-- ARGV[4] prune (0/1), ARGV[5] failures kept per connector, ARGV[6] batch count B,
-- B batch ids, then the part count P, per part: bucket count, sample count, failure
-- count; then per part: per bucket expire-at s, n, n x (field, by) -- n = -1: the
-- same fields as the bucket before -- then per sample (field, message), then the
-- failures, oldest first (the newest ends up at the head of the list).
-- Returns {0, i...} when batches i (1-based) were seen before, writing nothing;
-- else {1, per part 1 (applied) or 2 (tombstoned)}.
local call = redis.call
local now = tonumber(ARGV[3])
if ARGV[4] == '1' then call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) end
local keep = tonumber(ARGV[5])
local batches = tonumber(ARGV[6])
local ids = {}
for b = 1, batches do ids[b] = ARGV[6 + b] end
local scores = call('ZMSCORE', KEYS[1], unpack(ids))
local seen = {0}
for b = 1, batches do
  -- A score in the past: seen so long ago it is forgotten (not yet pruned).
  if scores[b] and tonumber(scores[b]) > now then seen[#seen + 1] = b end
end
if #seen > 1 then return seen end
local forget_at = now + tonumber(ARGV[1])
local zadd = {}
for b = 1, batches do
  zadd[2 * b - 1] = forget_at
  zadd[2 * b] = ids[b]
end
call('ZADD', KEYS[1], unpack(zadd))
call('EXPIRE', KEYS[1], ARGV[1])
local p0 = 7 + batches
local parts = tonumber(ARGV[p0])
local buckets, samples, failures, tombs = {}, {}, {}, {}
local k = 2
for p = 1, parts do
  buckets[p] = tonumber(ARGV[p0 - 2 + 3 * p])
  samples[p] = tonumber(ARGV[p0 - 1 + 3 * p])
  failures[p] = tonumber(ARGV[p0 + 3 * p])
  tombs[p] = KEYS[k]
  k = k + 1 + buckets[p] + (samples[p] > 0 and 1 or 0) + (failures[p] > 0 and 2 or 0)
end
-- One EXISTS per thousand tombstones (unpack is bounded by Lua's stack).
local any_tomb = false
for i = 1, parts, 1000 do
  if call('EXISTS', unpack(tombs, i, math.min(i + 999, parts))) > 0 then
    any_tomb = true
    break
  end
end
local result = {1}
k = 2
local a = p0 + 1 + 3 * parts
for p = 1, parts do
  local tombstoned = any_tomb and call('EXISTS', KEYS[k]) == 1
  k = k + 1
  local samples_key
  if samples[p] > 0 then
    samples_key = KEYS[k]
    k = k + 1
  end
  local failures_key, pushed_key
  if failures[p] > 0 then
    failures_key, pushed_key = KEYS[k], KEYS[k + 1]
    k = k + 2
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
      -- pcall: a counter at the i64 limit stays there instead of aborting
      -- the script halfway (Redis does not roll back what ran before).
      local by = ARGV[first + 1]
      if redis.pcall('HINCRBY', key, ARGV[first], by) == tonumber(by) then
        call('EXPIREAT', key, expire_at)
      end
      for i = first + 2, last, 2 do
        redis.pcall('HINCRBY', key, ARGV[i], ARGV[i + 1])
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
  if failures_key and not tombstoned then
    call('LPUSH', failures_key, unpack(ARGV, a, a + failures[p] - 1))
    call('LTRIM', failures_key, 0, keep - 1)
    call('EXPIRE', failures_key, ARGV[2])
    call('INCRBY', pushed_key, failures[p])
    call('EXPIRE', pushed_key, ARGV[2])
  end
  a = a + failures[p]
  result[p + 1] = tombstoned and 2 or 1
end
return result
