-- Claim the head of a person's lane for a task.
-- KEYS: 1 lane, 2 leases, 3 lane state, 4 inflight, 5 deliveries, 6 attempts, 7 lane identifies
-- ARGV: 1 person, 2 delivery id, 3 task token, 4 now ms, 5 lease ms, 6 tolerance ms
-- Returns {status}, status one of stale (not the head any more), early (asleep until
-- later), busy (another task holds it), gated (events still on their way from the door),
-- or lane_take.lua's {'ok', record, attempts, identifies waiting}.
-- include: lane_take.lua
local person, id, token, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
if redis.call('ZRANGE', KEYS[1], 0, 0)[1] ~= id then return {'stale'} end
local state = redis.call('HGET', KEYS[3], person)
local deadline = tonumber(redis.call('ZSCORE', KEYS[2], person) or '0')
if state == 'sleep' and deadline > now + tonumber(ARGV[6]) then return {'early'} end
if state and state ~= 'queued' and state ~= 'sleep' and state ~= token and deadline > now then
  return {'busy'}
end
if tonumber(redis.call('HGET', KEYS[4], person) or '0') > 0 then
  redis.call('HDEL', KEYS[3], person)
  redis.call('ZREM', KEYS[2], person)
  return {'gated'}
end
return take(KEYS[2], KEYS[3], KEYS[5], KEYS[6], KEYS[7], person, id, token, now + tonumber(ARGV[5]))
