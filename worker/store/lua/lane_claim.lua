-- Claim the head of a person's lane for a task.
-- Returns {status}, status one of stale (not the head any more), early (asleep until
-- later), busy (another task holds it), gated (events still on their way from the door),
-- or lane_take.lua's {'ok', record, attempts, identifies waiting}.
-- include: lane_take.lua
local lane = KEYS[1]
local leases = KEYS[2]
local lane_state = KEYS[3]
local inflight = KEYS[4]
local deliveries = KEYS[5]
local attempts = KEYS[6]
local lane_identifies = KEYS[7]
local person = ARGV[1]
local delivery = ARGV[2]  -- the delivery id
local token = ARGV[3]  -- the task's
local now = tonumber(ARGV[4])  -- ms
local lease_ms = tonumber(ARGV[5])
local tolerance_ms = tonumber(ARGV[6])

if redis.call('ZRANGE', lane, 0, 0)[1] ~= delivery then return {'stale'} end
local state = redis.call('HGET', lane_state, person)
local deadline = tonumber(redis.call('ZSCORE', leases, person) or '0')
if state == 'sleep' and deadline > now + tolerance_ms then return {'early'} end
if state and state ~= 'queued' and state ~= 'sleep' and state ~= token and deadline > now then
  return {'busy'}
end
if tonumber(redis.call('HGET', inflight, person) or '0') > 0 then
  redis.call('HDEL', lane_state, person)
  redis.call('ZREM', leases, person)
  return {'gated'}
end
return take(leases, lane_state, deliveries, attempts, lane_identifies, person, delivery, token, now + lease_ms)
