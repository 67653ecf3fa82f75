-- Reserve the next call's slot.
-- KEYS: 1 budget hash, 2 counters
-- ARGV: 1 default limit, 2 share, 3 window ms, 4 max wait ms
-- Returns reserve()'s reply (budget_reserve.lua).
-- include: budget_reserve.lua
return reserve(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
