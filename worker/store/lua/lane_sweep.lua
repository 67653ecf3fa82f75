-- Queue again the head of every lane whose deadline has passed (its worker died, its
-- task was lost, or its sleep is over).
-- KEYS: 1 leases, 2 lane state, 3 inflight
-- ARGV: 1 now ms, 2 dispatch ms, 3 most lanes per call, 4 the lane keys' prefix
-- Returns a flat list person, head, person, head, ...
-- include: lane_functions.lua
local now, dispatch = tonumber(ARGV[1]), tonumber(ARGV[2])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local woken = {}
for _, person in ipairs(due) do
  local head = next_head(ARGV[4] .. person, KEYS[1], KEYS[2], KEYS[3], person, now, dispatch)
  if head then
    table.insert(woken, person)
    table.insert(woken, head)
  end
end
return woken
