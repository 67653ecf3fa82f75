-- Store one accepted request: its queue messages, its people's in-flight counts and the
-- accepted counter, all or none.
-- Returns the number of messages pushed.
-- A script stops at its first error and keeps what it wrote before it, so every check comes
-- before the first write; a Redis over maxmemory refuses that first write (noeviction), so
-- then nothing is written either.
-- include: arguments.lua
local inflight = KEYS[1]
local counters = KEYS[2]
local queues = slice(KEYS, 3, #KEYS)  -- the queue key of each message
local accepted = ARGV[1]  -- events accepted
local messages = slice(ARGV, 2, #queues + 1)  -- one for each queue key, in publishing order
local people = slice(ARGV, #queues + 2, #ARGV)  -- (person, events) pairs

local function refuse(key, expected)
  return redis.error_reply('WRONGTYPE accept: ' .. key .. ' is not a ' .. expected)
end
for _, queue in ipairs(queues) do
  local kind = redis.call('TYPE', queue)['ok']
  if kind ~= 'none' and kind ~= 'list' then return refuse(queue, 'list') end
end
for _, hash in ipairs({inflight, counters}) do
  local kind = redis.call('TYPE', hash)['ok']
  if kind ~= 'none' and kind ~= 'hash' then return refuse(hash, 'hash') end
end
for i = 1, #people, 2 do
  local held = redis.call('HGET', inflight, people[i])
  if held and not tonumber(held) then return refuse(inflight .. ' ' .. people[i], 'number') end
end
local before = redis.call('HGET', counters, 'accepted')
if before and not tonumber(before) then return refuse(counters .. ' accepted', 'number') end
for i, queue in ipairs(queues) do
  redis.call('LPUSH', queue, messages[i])
end
for i = 1, #people, 2 do
  redis.call('HINCRBY', inflight, people[i], people[i + 1])
end
redis.call('HINCRBY', counters, 'accepted', accepted)
return #queues
