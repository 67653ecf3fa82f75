-- Dead-letter parked deliveries that no identify rescued within the hold time.
-- KEYS: 1 parked index, 2 counters, 3 deliveries, 4 dead letters, 5 dead-letter index
-- ARGV: 1 now ms, 2 hold ms, 3 most people per call, 4 the parked keys' prefix
-- Returns how many deliveries were dead-lettered.
local now, hold = tonumber(ARGV[1]), tonumber(ARGV[2])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local expired = 0
for _, person in ipairs(due) do
  local list = ARGV[4] .. person
  while true do
    local entry = redis.call('LINDEX', list, 0)
    if not entry then redis.call('ZREM', KEYS[1], person); break end
    local id, parked_at = string.match(entry, '^([^|]+)|(%d+)$')
    if tonumber(parked_at) + hold > now then
      redis.call('ZADD', KEYS[1], tonumber(parked_at) + hold, person)
      break
    end
    redis.call('LPOP', list)
    local record = redis.call('HGET', KEYS[3], id) or 'null'
    redis.call('HDEL', KEYS[3], id)
    redis.call('HSET', KEYS[4], id, '{"id":' .. cjson.encode(id) .. ',"person":' .. cjson.encode(person)
      .. ',"reason":"contact never identified","response":null,"attempts":0,"parked_at":' .. parked_at
      .. ',"dead_at":' .. ARGV[1] .. ',"delivery":' .. record .. '}')
    redis.call('ZADD', KEYS[5], now, id)
    redis.call('HINCRBY', KEYS[2], 'parked', -1)
    redis.call('HINCRBY', KEYS[2], 'dead_lettered', 1)
    expired = expired + 1
  end
end
return expired
