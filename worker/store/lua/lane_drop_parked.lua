-- Drop, unsent, a deleted person's parked deliveries accepted up to the deletion's boundary.
-- KEYS: 1 parked (the person's list), 2 parked index, 3 deliveries, 4 counters
-- ARGV: 1 person, 2 boundary (acceptance sequence: "<seq>:<n><code>" ids at or below it go)
-- Returns how many deliveries were dropped; each is counted deleted, no longer parked.
local boundary = tonumber(ARGV[2])
local kept, dropped = {}, 0
for _, entry in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  local id = string.match(entry, '^([^|]+)|')
  local seq = tonumber(string.match(id or '', '^(%d+):'))
  if seq and seq <= boundary then
    redis.call('HDEL', KEYS[3], id)
    redis.call('HINCRBY', KEYS[4], 'parked', -1)
    redis.call('HINCRBY', KEYS[4], 'deleted', 1)
    dropped = dropped + 1
  else
    table.insert(kept, entry)
  end
end
redis.call('DEL', KEYS[1])
if #kept > 0 then
  redis.call('RPUSH', KEYS[1], unpack(kept))
else
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return dropped
