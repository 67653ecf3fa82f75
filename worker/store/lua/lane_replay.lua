-- Put a dead letter back at the end of its person's lane as a new delivery.
-- Returns {'gone'} (replayed already) or {'ok', head to send or false}.
-- include: lane_functions.lua
local lane = KEYS[1]
local deliveries = KEYS[2]
local leases = KEYS[3]
local lane_state = KEYS[4]
local inflight = KEYS[5]
local counters = KEYS[6]
local lane_identifies = KEYS[7]
local dead = KEYS[8]  -- dead letters
local dead_index = KEYS[9]
local person = ARGV[1]
local delivery = ARGV[2]  -- the new delivery id
local record = ARGV[3]  -- its JSON
local seq = ARGV[4]
local now = tonumber(ARGV[5])  -- ms
local dispatch_ms = tonumber(ARGV[6])
local letter = ARGV[7]  -- the dead letter's id

if redis.call('HDEL', dead, letter) == 0 then return {'gone'} end
redis.call('ZREM', dead_index, letter)
redis.call('ZADD', lane, seq, delivery)
redis.call('HSET', deliveries, delivery, record)
redis.call('HINCRBY', counters, 'deliveries', 1)
if is_identify(delivery) then redis.call('HINCRBY', lane_identifies, person, 1) end
return {'ok', wake(lane, leases, lane_state, inflight, person, now, dispatch_ms)}
