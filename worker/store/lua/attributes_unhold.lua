-- Take values out of a contact's or company's held attribute values; the last one out takes
-- its unknown_attribute dead letter with it, so no letter is ever left holding nothing.
-- KEYS: 1 held values (hash name -> JSON), 2 dead letters, 3 dead-letter index, 4 held letters set
-- ARGV: 1 the letter's id, then pairs: an attribute name, the JSON value it must still hold
--       ("" for any value: it was written since, so the held one must never follow)
-- Returns how many values were taken out.
local removed = 0
for i = 2, #ARGV, 2 do
  local name, expected = ARGV[i], ARGV[i + 1]
  if expected == '' or redis.call('HGET', KEYS[1], name) == expected then
    removed = removed + redis.call('HDEL', KEYS[1], name)
  end
end
if removed > 0 and redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('SREM', KEYS[4], ARGV[1])
end
return removed
