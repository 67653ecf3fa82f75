-- Keep a message no worker can read as a dead letter, once, and release the in-flight
-- count of the people whose events it carried (when its body could be read that far).
-- Returns false when that letter is kept already (the message came back after its worker
-- died before acknowledging it: nothing is released twice), else a flat list
-- person, head, ... of the lanes this woke.
-- include: lane_functions.lua
-- include: arguments.lua
local dead = KEYS[1]  -- dead letters
local dead_index = KEYS[2]
local counters = KEYS[3]
local inflight = KEYS[4]
local leases = KEYS[5]
local lane_state = KEYS[6]
local letter = ARGV[1]  -- the dead letter's id
local letter_json = ARGV[2]
local now = tonumber(ARGV[3])  -- ms
local dispatch_ms = tonumber(ARGV[4])
local lane_prefix = ARGV[5]  -- the lane keys' prefix
local people = slice(ARGV, 6, #ARGV)  -- (person, events) pairs

if redis.call('HSETNX', dead, letter, letter_json) == 0 then return false end
redis.call('ZADD', dead_index, now, letter)
redis.call('HINCRBY', counters, 'unreadable', 1)
local woken = {}
for i = 1, #people, 2 do
  local person, events = people[i], tonumber(people[i + 1])
  -- Events the door accepted that will never be ingested: out of the backlog (counters.py).
  redis.call('HINCRBY', counters, 'unreadable_events', events)
  if decr_field(inflight, person, events) then
    local head = wake(lane_prefix .. person, leases, lane_state, inflight, person, now, dispatch_ms)
    if head then
      table.insert(woken, person)
      table.insert(woken, head)
    end
  end
end
return woken
