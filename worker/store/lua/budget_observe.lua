-- Correct the schedule from Intercom's X-RateLimit-* headers; count and honour a 429.
-- Uses HEADROOM, set by worker/store/budget.py.
-- KEYS: 1 budget hash, 2 counters
-- ARGV: 1 limit, 2 remaining, 3 reset s (each '' when absent), 4 HTTP status, 5 share,
--       6 window ms
-- Returns 1 for a 429, else 0.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[1] ~= '' then redis.call('HSET', KEYS[1], 'limit', ARGV[1]) end
if ARGV[3] == '' then return 0 end
local reset = tonumber(ARGV[3]) * 1000
local tat = tonumber(redis.call('HGET', KEYS[1], 'tat') or '0')
if ARGV[4] == '429' then
  redis.call('HINCRBY', KEYS[2], 'rate_limited', 1)
  redis.call('HSET', KEYS[1], 'tat', math.max(tat, reset))
  return 1
end
if ARGV[2] ~= '' and ARGV[1] ~= '' then
  -- Fit our remaining calls of this window into what Intercom says is left.
  local allowed = math.max(1, math.floor(tonumber(ARGV[1]) * tonumber(ARGV[5]) * HEADROOM))
  local interval = tonumber(ARGV[6]) / allowed
  local remaining = tonumber(ARGV[2])
  local earliest = reset - remaining * interval
  if remaining <= 0 then earliest = reset end
  if earliest > tat and earliest > now then redis.call('HSET', KEYS[1], 'tat', earliest) end
end
return 0
