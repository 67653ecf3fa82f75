-- Point an anonymous id at a contact, unless a lead would take it from a user.
-- Returns {id, role} of the contact that held the id before, or false.
local anonymous = KEYS[1]  -- the anonymous id's key
local contact_keys = KEYS[2]  -- the new contact's reverse index
local contact = ARGV[1]  -- contact id
local role = ARGV[2]
local ttl = ARGV[3]  -- seconds
local sent = ARGV[4]  -- what was just sent to the contact ('' to keep the key's record: it
-- names its contact, so a stale one holds nothing)

local before = redis.call('HMGET', anonymous, 'id', 'role')
if before[1] and before[2] == 'user' and role == 'lead' then return before end
redis.call('HSET', anonymous, 'id', contact, 'role', role)
if sent ~= '' then redis.call('HSET', anonymous, 'sent', sent) end
redis.call('EXPIRE', anonymous, ttl)
redis.call('SADD', contact_keys, anonymous)
redis.call('EXPIRE', contact_keys, ttl)
if before[1] then return before end
return false
