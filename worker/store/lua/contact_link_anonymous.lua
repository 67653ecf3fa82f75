-- Point an anonymous id at a contact, unless a lead would take it from a user.
-- KEYS: 1 the anonymous id's key, 2 the new contact's reverse index
-- ARGV: 1 contact id, 2 role, 3 TTL s, 4 what was just sent to the contact ('' to keep the
--       key's record: it names its contact, so a stale one holds nothing)
-- Returns {id, role} of the contact that held the id before, or false.
local before = redis.call('HMGET', KEYS[1], 'id', 'role')
if before[1] and before[2] == 'user' and ARGV[2] == 'lead' then return before end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'role', ARGV[2])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'sent', ARGV[4]) end
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('SADD', KEYS[2], KEYS[1])
redis.call('EXPIRE', KEYS[2], ARGV[3])
if before[1] then return before end
return false
