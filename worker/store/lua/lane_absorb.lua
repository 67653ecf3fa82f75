-- Close deliveries that were delivered in the call of the head before them (coalesced
-- identifies): delivered, counted as coalesced, and gone from the lane. The head itself is
-- closed afterwards by lane_finish.lua, which hands the lane on.
-- Returns how many were closed (an id no longer in the lane is skipped).
-- include: lane_functions.lua
-- include: arguments.lua
local lane = KEYS[1]
local deliveries = KEYS[2]
local counters = KEYS[3]
local lane_identifies = KEYS[4]
local attempts = KEYS[5]
local person = ARGV[1]
local absorbed = slice(ARGV, 2, #ARGV)  -- the delivery ids

local closed = 0
for _, id in ipairs(absorbed) do
  if redis.call('ZREM', lane, id) == 1 then
    redis.call('HDEL', deliveries, id)
    redis.call('HINCRBY', counters, 'delivered', 1)
    redis.call('HINCRBY', counters, 'coalesced', 1)
    drop_attempts(attempts, counters, id)
    if is_identify(id) then decr_field(lane_identifies, person) end
    closed = closed + 1
  end
end
return closed
