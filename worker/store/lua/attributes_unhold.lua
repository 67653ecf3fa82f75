-- Take values out of a contact's or company's held attribute values; the last one out takes
-- its unknown_attribute dead letter with it, so no letter is ever left holding nothing.
-- Returns how many values were taken out.
-- include: arguments.lua
local held = KEYS[1]  -- held values (hash name -> JSON)
local dead = KEYS[2]  -- dead letters
local dead_index = KEYS[3]
local letters = KEYS[4]  -- the held-values letters (a set)
local letter = ARGV[1]  -- the letter's id
local values = slice(ARGV, 2, #ARGV)  -- pairs: an attribute name, the JSON value it must still
-- hold ("" for any value: it was written since, so the held one must never follow)

local removed = 0
for i = 1, #values, 2 do
  local name, expected = values[i], values[i + 1]
  if expected == '' or redis.call('HGET', held, name) == expected then
    removed = removed + redis.call('HDEL', held, name)
  end
end
if removed > 0 and redis.call('EXISTS', held) == 0 then
  redis.call('HDEL', dead, letter)
  redis.call('ZREM', dead_index, letter)
  redis.call('SREM', letters, letter)
end
return removed
