-- Release a person's parked deliveries now; wake the lane if it was idle.
-- KEYS: 1 lane, 2 leases, 3 lane state, 4 inflight, 5 counters, 6 parked, 7 parked index
-- ARGV: 1 person, 2 now ms, 3 dispatch ms
-- Returns the head to send when the lane woke, else false.
-- include: lane_functions.lua
local person = ARGV[1]
if unpark(KEYS[1], KEYS[6], KEYS[7], KEYS[5], person) == 0 then return false end
return wake(KEYS[1], KEYS[2], KEYS[3], KEYS[4], person, tonumber(ARGV[2]), tonumber(ARGV[3]))
