-- Append one accepted event's deliveries to its person's lane.
-- Returns the head to send a task for when this woke the lane, else false.
-- The same acceptance seen again (a redelivered ingest task) changes nothing; a messageId
-- seen before counts as a duplicate.
-- include: lane_functions.lua
-- include: arguments.lua
local seen = KEYS[1]  -- the messageId's key
local lane = KEYS[2]
local deliveries = KEYS[3]
local leases = KEYS[4]
local lane_state = KEYS[5]
local inflight = KEYS[6]
local counters = KEYS[7]
local lane_identifies = KEYS[8]
local seq = ARGV[1]
local person = ARGV[2]
local now = tonumber(ARGV[3])  -- ms
local dispatch_ms = tonumber(ARGV[4])
local seen_ttl = ARGV[5]  -- seconds
local identifies = tonumber(ARGV[6])  -- identifies among the deliveries
local records = slice(ARGV, 7, #ARGV)  -- (delivery id, record JSON) pairs

local before = redis.call('GET', seen)
if before == seq then return false end  -- a redelivered ingest: this event is in already
decr_field(inflight, person)
if before then
  redis.call('HINCRBY', counters, 'duplicate', 1)
elseif #records == 0 then
  redis.call('SET', seen, seq, 'EX', seen_ttl)
  redis.call('HINCRBY', counters, 'filtered', 1)
else
  redis.call('SET', seen, seq, 'EX', seen_ttl)
  redis.call('HINCRBY', counters, 'ingested', 1)
  redis.call('HINCRBY', counters, 'deliveries', #records / 2)
  for i = 1, #records, 2 do
    redis.call('ZADD', lane, seq, records[i])
    redis.call('HSET', deliveries, records[i], records[i + 1])
  end
  if identifies > 0 then redis.call('HINCRBY', lane_identifies, person, identifies) end
end
return wake(lane, leases, lane_state, inflight, person, now, dispatch_ms)
