-- Settle an allowed check: correct rates and quotas from the cost reserved to the units used; free the lease.
-- KEYS: the rate keys to correct, the quota keys to correct, then the concurrency key if there is one.
-- ARGV: n_rates, n_quotas, has_concurrency (0 or 1); then (limit, period_us, used - cost) per rate,
--       (used - cost, ttl_s) per quota, and (lease, cost) for concurrency.
-- State and time as in acquire.lua. A refund never moves a TAT before now, nor a counter below 0.

local KEY_MARGIN_MS = 1000

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local n_rates, n_quotas, has_concurrency = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3] == '1'

for i = 1, n_rates do
  local a = 3 + (i - 1) * 3
  local limit, period, delta = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local state = redis.call('HMGET', KEYS[i], 't', 'd')
  local debt = 0
  if state[1] then
    debt = math.max(0, tonumber(state[2]) - (now - tonumber(state[1])))
  end
  debt = debt + delta * period / limit
  if debt > 0 then
    redis.call('HSET', KEYS[i], 't', now, 'd', debt)
    redis.call('PEXPIRE', KEYS[i], math.ceil(debt / 1000) + KEY_MARGIN_MS)
  else
    redis.call('DEL', KEYS[i])
  end
end

local quota_base = 3 + n_rates * 3
for j = 1, n_quotas do
  local key, a = KEYS[n_rates + j], quota_base + (j - 1) * 2
  local delta = tonumber(ARGV[a + 1])
  if redis.call('EXISTS', key) == 1 then
    local value = redis.call('INCRBY', key, ARGV[a + 1])
    if value < 0 then
      redis.call('INCRBY', key, -value)
    end
  elseif delta > 0 then -- the window rolled over since the charge: the extra units open the new one
    redis.call('SET', key, ARGV[a + 1], 'EX', ARGV[a + 2])
  end
end

if has_concurrency then
  local key, a = KEYS[n_rates + n_quotas + 1], quota_base + n_quotas * 2
  local lease, cost = ARGV[a + 1], tonumber(ARGV[a + 2])
  redis.call('ZREM', key, lease)
  for slot = 2, cost do
    redis.call('ZREM', key, lease .. ':' .. slot)
  end
end
return 0
