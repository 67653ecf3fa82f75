-- Move the lane's first identify in front of its head (identify first).
-- Returns the identify's delivery id (to send), or false when the lane has none.
-- include: lane_functions.lua
local lane = KEYS[1]
local leases = KEYS[2]
local lane_state = KEYS[3]
local person = ARGV[1]
local now = tonumber(ARGV[2])  -- ms
local dispatch_ms = tonumber(ARGV[3])

local members = redis.call('ZRANGE', lane, 0, -1, 'WITHSCORES')
for i = 1, #members, 2 do
  if is_identify(members[i]) then
    if i > 1 then
      redis.call('ZADD', lane, tonumber(members[2]) - 0.5, members[i])
    end
    redis.call('HSET', lane_state, person, 'queued')
    redis.call('ZADD', leases, now + dispatch_ms, person)
    return members[i]
  end
end
return false
