-- Move the lane's first identify in front of its head (identify first).
-- KEYS: 1 lane, 2 leases, 3 lane state
-- ARGV: 1 person, 2 now ms, 3 dispatch ms
-- Returns the identify's delivery id (to send), or false when the lane has none.
-- include: lane_functions.lua
local members = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #members, 2 do
  if is_identify(members[i]) then
    if i > 1 then
      redis.call('ZADD', KEYS[1], tonumber(members[2]) - 0.5, members[i])
    end
    redis.call('HSET', KEYS[3], ARGV[1], 'queued')
    redis.call('ZADD', KEYS[2], tonumber(ARGV[2]) + tonumber(ARGV[3]), ARGV[1])
    return members[i]
  end
end
return false
