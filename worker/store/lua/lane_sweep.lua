-- Queue again the head of every lane whose deadline has passed (its worker died, its
-- task was lost, or its sleep is over).
-- Returns a flat list person, head, person, head, ...
-- include: lane_functions.lua
local leases = KEYS[1]
local lane_state = KEYS[2]
local inflight = KEYS[3]
local now = tonumber(ARGV[1])  -- ms
local dispatch_ms = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])  -- most lanes per call
local lane_prefix = ARGV[4]  -- the lane keys' prefix

local due = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, limit)
local woken = {}
for _, person in ipairs(due) do
  local head = next_head(lane_prefix .. person, leases, lane_state, inflight, person, now, dispatch_ms)
  if head then
    table.insert(woken, person)
    table.insert(woken, head)
  end
end
return woken
