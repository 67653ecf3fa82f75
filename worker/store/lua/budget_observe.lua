-- Correct the schedule from Intercom's X-RateLimit-* headers; count and honour a 429.
-- Uses HEADROOM, set by worker/store/budget.py.
-- Returns 1 for a 429, else 0.
local budget = KEYS[1]  -- the rate budget hash
local counters = KEYS[2]
local limit = ARGV[1]  -- limit, remaining and reset (s): each '' when absent
local remaining = ARGV[2]
local reset_s = ARGV[3]
local status = ARGV[4]  -- HTTP status
local share = ARGV[5]
local window_ms = ARGV[6]

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if limit ~= '' then redis.call('HSET', budget, 'limit', limit) end
if reset_s == '' then return 0 end
local reset = tonumber(reset_s) * 1000
local tat = tonumber(redis.call('HGET', budget, 'tat') or '0')
if status == '429' then
  redis.call('HINCRBY', counters, 'rate_limited', 1)
  redis.call('HSET', budget, 'tat', math.max(tat, reset))
  return 1
end
if remaining ~= '' and limit ~= '' then
  -- Fit our remaining calls of this window into what Intercom says is left.
  local allowed = math.max(1, math.floor(tonumber(limit) * tonumber(share) * HEADROOM))
  local interval = tonumber(window_ms) / allowed
  local left = tonumber(remaining)
  local earliest = reset - left * interval
  if left <= 0 then earliest = reset end
  if earliest > tat and earliest > now then redis.call('HSET', budget, 'tat', earliest) end
end
return 0
