-- The identifies right behind a lane's head, before anything else (to coalesce them with it).
-- Returns a flat list id, record JSON, id, record JSON, ...; empty when the head is not the
-- lane's head any more or no identify follows it.
-- include: lane_functions.lua
local lane = KEYS[1]
local deliveries = KEYS[2]
local head = ARGV[1]  -- the head's delivery id
local limit = tonumber(ARGV[2])  -- most identifies to return

local ids = redis.call('ZRANGE', lane, 0, limit)
if ids[1] ~= head then return {} end
local found = {}
for i = 2, #ids do
  if not is_identify(ids[i]) then break end
  local record = redis.call('HGET', deliveries, ids[i])
  if not record then break end
  table.insert(found, ids[i])
  table.insert(found, record)
end
return found
