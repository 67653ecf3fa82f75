-- Release a person's parked deliveries now; wake the lane if it was idle.
-- Returns the head to send when the lane woke, else false.
-- include: lane_functions.lua
local lane = KEYS[1]
local leases = KEYS[2]
local lane_state = KEYS[3]
local inflight = KEYS[4]
local counters = KEYS[5]
local parked = KEYS[6]  -- the person's parked list
local parked_index = KEYS[7]
local person = ARGV[1]
local now = tonumber(ARGV[2])  -- ms
local dispatch_ms = tonumber(ARGV[3])

if unpark(lane, parked, parked_index, counters, person) == 0 then return false end
return wake(lane, leases, lane_state, inflight, person, now, dispatch_ms)
