-- Charge every limit of one check, or none of them (see redis_store.py and memory_store.py).
-- KEYS: the rate keys, the quota keys, then the concurrency key if there is one.
-- ARGV: n_rates, n_quotas, has_concurrency (0 or 1); then (limit, period_us, cost) per rate,
--       (limit, cost, ttl_s) per quota, and (limit, lease, lease_ttl_us, cost) for concurrency.
-- Reply (integers): allowed (0 or 1), denied kind (0 none, 1 rate, 2 quota, 3 concurrency), denied index
--       (0-based), retry after ms (the longest wait among the refusing limits), then remaining and reset ms
--       per rate.
-- Time is the server's, in microseconds. A rate is a hash {t = when it was charged, d = how far its TAT lay
-- ahead of t}: TAT = t + d, stored as two small numbers because one TAT in microseconds (~1.7e15) would lose
-- the precision that sums of fractional intervals need. Concurrency is a sorted set of slots scored by when
-- they lapse: a lease of cost c holds c members, the lease itself and lease:2 .. lease:c.

local TOLERANCE = 1e-3 -- of one unit's interval, as in memory_store.py
local KEY_MARGIN_MS = 1000
local CONCURRENCY_RETRY_US = 1000000

local function ceil_ms(us)
  return math.ceil(us / 1000)
end

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local n_rates, n_quotas, has_concurrency = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3] == '1'

local denied_kind, denied_index, retry_us = 0, 0, 0
local function refuse(kind, index, wait_us)
  if denied_kind == 0 then
    denied_kind, denied_index = kind, index
  end
  retry_us = math.max(retry_us, wait_us)
end

local rates = {}
for i = 1, n_rates do
  local a = 3 + (i - 1) * 3
  local limit, period, cost = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local interval = period / limit
  local state = redis.call('HMGET', KEYS[i], 't', 'd')
  local debt = 0
  if state[1] then
    debt = math.max(0, tonumber(state[2]) - (now - tonumber(state[1])))
  end
  local charged = debt + cost * interval
  local excess = charged - period
  if excess > TOLERANCE * interval then
    refuse(1, i - 1, cost > limit and period or excess)
  end
  rates[i] = { period = period, interval = interval, debt = debt, charged = charged }
end

local quota_base = 3 + n_rates * 3
for j = 1, n_quotas do
  local key, a = KEYS[n_rates + j], quota_base + (j - 1) * 3
  local limit, cost, ttl_s = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  if tonumber(redis.call('GET', key) or '0') + cost > limit then
    local pttl = redis.call('PTTL', key)
    refuse(2, j - 1, pttl > 0 and pttl * 1000 or ttl_s * 1000000)
  end
end

local concurrency_key, concurrency_base = KEYS[n_rates + n_quotas + 1], quota_base + n_quotas * 3
local concurrency_cost = tonumber(ARGV[concurrency_base + 4])
if has_concurrency then
  redis.call('ZREMRANGEBYSCORE', concurrency_key, '-inf', now)
  if redis.call('ZCARD', concurrency_key) + concurrency_cost > tonumber(ARGV[concurrency_base + 1]) then
    refuse(3, 0, CONCURRENCY_RETRY_US)
  end
end

local allowed = denied_kind == 0
if allowed then
  for i = 1, n_rates do
    local rate = rates[i]
    redis.call('HSET', KEYS[i], 't', now, 'd', rate.charged)
    redis.call('PEXPIRE', KEYS[i], ceil_ms(rate.charged) + KEY_MARGIN_MS)
  end
  for j = 1, n_quotas do
    local key = KEYS[n_rates + j]
    redis.call('INCRBY', key, ARGV[quota_base + (j - 1) * 3 + 2])
    if redis.call('PTTL', key) == -1 then
      redis.call('EXPIRE', key, ARGV[quota_base + (j - 1) * 3 + 3])
    end
  end
  if has_concurrency then
    local lease_ttl, lease = tonumber(ARGV[concurrency_base + 3]), ARGV[concurrency_base + 2]
    redis.call('ZADD', concurrency_key, now + lease_ttl, lease)
    for slot = 2, concurrency_cost do
      redis.call('ZADD', concurrency_key, now + lease_ttl, lease .. ':' .. slot)
    end
    local keep_ms = ceil_ms(lease_ttl) + KEY_MARGIN_MS
    if redis.call('PTTL', concurrency_key) < keep_ms then
      redis.call('PEXPIRE', concurrency_key, keep_ms)
    end
  end
end

local reply = { allowed and 1 or 0, denied_kind, denied_index, ceil_ms(retry_us) }
for i = 1, n_rates do
  local rate = rates[i]
  local debt = allowed and rate.charged or rate.debt
  local remaining = math.floor((rate.period - debt) / rate.interval + TOLERANCE)
  reply[#reply + 1] = math.max(0, remaining)
  reply[#reply + 1] = ceil_ms(debt)
end
return reply
