-- Close deliveries that were delivered in the call of the head before them (coalesced
-- identifies): delivered, counted as coalesced, and gone from the lane. The head itself is
-- closed afterwards by lane_finish.lua, which hands the lane on.
-- KEYS: 1 lane, 2 deliveries, 3 counters, 4 lane identifies, 5 attempts
-- ARGV: 1 person, then the delivery ids
-- Returns how many were closed (an id no longer in the lane is skipped).
-- include: lane_functions.lua
local closed = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  if redis.call('ZREM', KEYS[1], id) == 1 then
    redis.call('HDEL', KEYS[2], id)
    redis.call('HINCRBY', KEYS[3], 'delivered', 1)
    redis.call('HINCRBY', KEYS[3], 'coalesced', 1)
    drop_attempts(KEYS[5], KEYS[3], id)
    if is_identify(id) then decr_field(KEYS[4], ARGV[1]) end
    closed = closed + 1
  end
end
return closed
