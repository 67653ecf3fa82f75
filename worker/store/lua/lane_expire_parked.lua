-- Dead-letter parked deliveries that no identify rescued within the hold time.
-- Returns how many deliveries were dead-lettered.
local parked_index = KEYS[1]
local counters = KEYS[2]
local deliveries = KEYS[3]
local dead = KEYS[4]  -- dead letters
local dead_index = KEYS[5]
local now = tonumber(ARGV[1])  -- ms
local hold_ms = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])  -- most people per call
local parked_prefix = ARGV[4]  -- the parked keys' prefix

local due = redis.call('ZRANGEBYSCORE', parked_index, '-inf', now, 'LIMIT', 0, limit)
local expired = 0
for _, person in ipairs(due) do
  local list = parked_prefix .. person
  while true do
    local entry = redis.call('LINDEX', list, 0)
    if not entry then redis.call('ZREM', parked_index, person); break end
    local id, parked_at = string.match(entry, '^([^|]+)|(%d+)$')
    if tonumber(parked_at) + hold_ms > now then
      redis.call('ZADD', parked_index, tonumber(parked_at) + hold_ms, person)
      break
    end
    redis.call('LPOP', list)
    local record = redis.call('HGET', deliveries, id) or 'null'
    redis.call('HDEL', deliveries, id)
    redis.call('HSET', dead, id, '{"id":' .. cjson.encode(id) .. ',"person":' .. cjson.encode(person)
      .. ',"reason":"contact never identified","response":null,"attempts":0,"parked_at":' .. parked_at
      .. ',"dead_at":' .. now .. ',"delivery":' .. record .. '}')
    redis.call('ZADD', dead_index, now, id)
    redis.call('HINCRBY', counters, 'parked', -1)
    redis.call('HINCRBY', counters, 'dead_lettered', 1)
    expired = expired + 1
  end
end
return expired
