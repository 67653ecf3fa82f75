-- The identifies right behind a lane's head, before anything else (to coalesce them with it).
-- KEYS: 1 lane, 2 deliveries
-- ARGV: 1 the head's delivery id, 2 most identifies to return
-- Returns a flat list id, record JSON, id, record JSON, ...; empty when the head is not the
-- lane's head any more or no identify follows it.
-- include: lane_functions.lua
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[2]))
if ids[1] ~= ARGV[1] then return {} end
local found = {}
for i = 2, #ids do
  if not is_identify(ids[i]) then break end
  local record = redis.call('HGET', KEYS[2], ids[i])
  if not record then break end
  table.insert(found, ids[i])
  table.insert(found, record)
end
return found
