-- Append one accepted event's deliveries to its person's lane.
-- KEYS: 1 seen (the messageId's key), 2 lane, 3 deliveries, 4 leases, 5 lane state,
--       6 inflight, 7 counters, 8 lane identifies
-- ARGV: 1 seq, 2 person, 3 now ms, 4 dispatch ms, 5 seen TTL s, 6 identifies among the
--       deliveries, then (delivery id, record JSON) pairs
-- Returns the head to send a task for when this woke the lane, else false.
-- The same acceptance seen again (a redelivered ingest task) changes nothing; a messageId
-- seen before counts as a duplicate.
-- include: lane_functions.lua
local seq, person, now, dispatch = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local seen = redis.call('GET', KEYS[1])
if seen == seq then return false end  -- a redelivered ingest: this event is in already
decr_field(KEYS[6], person)
if seen then
  redis.call('HINCRBY', KEYS[7], 'duplicate', 1)
elseif #ARGV == 6 then
  redis.call('SET', KEYS[1], seq, 'EX', ARGV[5])
  redis.call('HINCRBY', KEYS[7], 'filtered', 1)
else
  redis.call('SET', KEYS[1], seq, 'EX', ARGV[5])
  redis.call('HINCRBY', KEYS[7], 'ingested', 1)
  redis.call('HINCRBY', KEYS[7], 'deliveries', (#ARGV - 6) / 2)
  for i = 7, #ARGV, 2 do
    redis.call('ZADD', KEYS[2], seq, ARGV[i])
    redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
  end
  if tonumber(ARGV[6]) > 0 then redis.call('HINCRBY', KEYS[8], person, ARGV[6]) end
end
return wake(KEYS[2], KEYS[4], KEYS[5], KEYS[6], person, now, dispatch)
