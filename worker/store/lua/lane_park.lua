-- Set the head aside until the person's next delivered identify.
-- Returns {'stale'} or {'ok', next head or false}.
-- include: lane_functions.lua
local lane = KEYS[1]
local leases = KEYS[2]
local lane_state = KEYS[3]
local inflight = KEYS[4]
local counters = KEYS[5]
local parked = KEYS[6]  -- the person's parked list
local parked_index = KEYS[7]
local attempts = KEYS[8]
local person = ARGV[1]
local delivery = ARGV[2]  -- the head's delivery id
local now = tonumber(ARGV[3])  -- ms
local dispatch_ms = tonumber(ARGV[4])
local hold_ms = tonumber(ARGV[5])

if not redis.call('ZSCORE', lane, delivery) then return {'stale'} end
redis.call('ZREM', lane, delivery)
redis.call('RPUSH', parked, delivery .. '|' .. now)
redis.call('ZADD', parked_index, 'NX', now + hold_ms, person)
redis.call('HINCRBY', counters, 'parked', 1)
drop_attempts(attempts, counters, delivery)
return {'ok', next_head(lane, leases, lane_state, inflight, person, now, dispatch_ms)}
