-- Set a person's in-flight count to the number of their events found still on their way,
-- if the count is still the one the sweep saw; wake the lane when that lets it run.
-- Returns {status, head}: status "repaired" or "changed" (the count moved meanwhile: left
-- alone, the next check sees it again); head is the delivery to send a task for, or "".
-- include: lane_functions.lua
local inflight = KEYS[1]
local leases = KEYS[2]
local lane_state = KEYS[3]
local counters = KEYS[4]
local lane = KEYS[5]  -- the person's lane
local person = ARGV[1]
local seen = ARGV[2]  -- the count the sweep saw
local found = tonumber(ARGV[3])  -- events found on their way
local now = tonumber(ARGV[4])  -- ms
local dispatch_ms = tonumber(ARGV[5])

if (redis.call('HGET', inflight, person) or '0') ~= seen then return {'changed', ''} end
if found > 0 then
  redis.call('HSET', inflight, person, found)
else
  redis.call('HDEL', inflight, person)
end
redis.call('HINCRBY', counters, 'inflight_repaired', 1)
if found > 0 then return {'repaired', ''} end
return {'repaired', wake(lane, leases, lane_state, inflight, person, now, dispatch_ms) or ''}
