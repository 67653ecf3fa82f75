-- Put a dead letter back at the end of its person's lane as a new delivery.
-- KEYS: 1 lane, 2 deliveries, 3 leases, 4 lane state, 5 inflight, 6 counters,
--       7 lane identifies, 8 dead letters, 9 dead-letter index
-- ARGV: 1 person, 2 new delivery id, 3 record JSON, 4 seq, 5 now ms, 6 dispatch ms,
--       7 the dead letter's id
-- Returns {'gone'} (replayed already) or {'ok', head to send or false}.
-- include: lane_functions.lua
local person, id = ARGV[1], ARGV[2]
if redis.call('HDEL', KEYS[8], ARGV[7]) == 0 then return {'gone'} end
redis.call('ZREM', KEYS[9], ARGV[7])
redis.call('ZADD', KEYS[1], ARGV[4], id)
redis.call('HSET', KEYS[2], id, ARGV[3])
redis.call('HINCRBY', KEYS[6], 'deliveries', 1)
if is_identify(id) then redis.call('HINCRBY', KEYS[7], person, 1) end
return {'ok', wake(KEYS[1], KEYS[3], KEYS[4], KEYS[5], person, tonumber(ARGV[5]), tonumber(ARGV[6]))}
