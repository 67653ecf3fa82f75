-- Keep a message no worker can read as a dead letter, once, and release the in-flight
-- count of the people whose events it carried (when its body could be read that far).
-- KEYS: 1 dead letters, 2 dead-letter index, 3 counters, 4 inflight, 5 leases, 6 lane state
-- ARGV: 1 dead letter id, 2 its JSON, 3 now ms, 4 dispatch ms, 5 the lane keys' prefix,
--       then (person, events) pairs
-- Returns false when that letter is kept already (the message came back after its worker
-- died before acknowledging it: nothing is released twice), else a flat list
-- person, head, ... of the lanes this woke.
-- include: lane_functions.lua
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return false end
local now, dispatch = tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('HINCRBY', KEYS[3], 'unreadable', 1)
local woken = {}
for i = 6, #ARGV, 2 do
  local person = ARGV[i]
  -- Events the door accepted that will never be ingested: out of the backlog (counters.py).
  redis.call('HINCRBY', KEYS[3], 'unreadable_events', tonumber(ARGV[i + 1]))
  if decr_field(KEYS[4], person, tonumber(ARGV[i + 1])) then
    local head = wake(ARGV[5] .. person, KEYS[5], KEYS[6], KEYS[4], person, now, dispatch)
    if head then
      table.insert(woken, person)
      table.insert(woken, head)
    end
  end
end
return woken
