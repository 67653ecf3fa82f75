-- Store one accepted request: its queue messages, its people's in-flight counts and the
-- accepted counter, all or none.
-- KEYS: 1 inflight, 2 counters, then the queue key of each message
-- ARGV: 1 events accepted, 2 number of people n, then n (person, events) pairs, then the
--       messages, one for each queue key, in publishing order
-- Returns the number of messages pushed.
-- A script stops at its first error and keeps what it wrote before it, so every check comes
-- before the first write; a Redis over maxmemory refuses that first write (noeviction), so
-- then nothing is written either.
local n = tonumber(ARGV[2])
local first_message = 3 + 2 * n
local function refuse(key, expected)
  return redis.error_reply('WRONGTYPE accept: ' .. key .. ' is not a ' .. expected)
end
for i = 3, #KEYS do
  local kind = redis.call('TYPE', KEYS[i])['ok']
  if kind ~= 'none' and kind ~= 'list' then return refuse(KEYS[i], 'list') end
end
for i = 1, 2 do
  local kind = redis.call('TYPE', KEYS[i])['ok']
  if kind ~= 'none' and kind ~= 'hash' then return refuse(KEYS[i], 'hash') end
end
for i = 3, first_message - 1, 2 do
  local held = redis.call('HGET', KEYS[1], ARGV[i])
  if held and not tonumber(held) then return refuse(KEYS[1] .. ' ' .. ARGV[i], 'number') end
end
local accepted = redis.call('HGET', KEYS[2], 'accepted')
if accepted and not tonumber(accepted) then return refuse(KEYS[2] .. ' accepted', 'number') end
for i = 3, #KEYS do
  redis.call('LPUSH', KEYS[i], ARGV[first_message + i - 3])
end
for i = 3, first_message - 1, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('HINCRBY', KEYS[2], 'accepted', ARGV[1])
return #KEYS - 2
