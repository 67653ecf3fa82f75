-- Drop, unsent, a deleted person's parked deliveries accepted up to the deletion's boundary.
-- Returns how many deliveries were dropped; each is counted deleted, no longer parked.
local parked = KEYS[1]  -- the person's parked list
local parked_index = KEYS[2]
local deliveries = KEYS[3]
local counters = KEYS[4]
local person = ARGV[1]
local boundary = tonumber(ARGV[2])  -- acceptance sequence: "<seq>:<n><code>" ids at or below it go

local kept, dropped = {}, 0
for _, entry in ipairs(redis.call('LRANGE', parked, 0, -1)) do
  local id = string.match(entry, '^([^|]+)|')
  local seq = tonumber(string.match(id or '', '^(%d+):'))
  if seq and seq <= boundary then
    redis.call('HDEL', deliveries, id)
    redis.call('HINCRBY', counters, 'parked', -1)
    redis.call('HINCRBY', counters, 'deleted', 1)
    dropped = dropped + 1
  else
    table.insert(kept, entry)
  end
end
redis.call('DEL', parked)
if #kept > 0 then
  redis.call('RPUSH', parked, unpack(kept))
else
  redis.call('ZREM', parked_index, person)
end
return dropped
