-- Reserve the next call's slot.
-- Returns reserve()'s reply (budget_reserve.lua).
-- include: budget_reserve.lua
local budget = KEYS[1]  -- the rate budget hash
local counters = KEYS[2]
local default_limit = ARGV[1]
local share = ARGV[2]
local window_ms = ARGV[3]
local max_wait_ms = ARGV[4]

return reserve(budget, counters, default_limit, share, window_ms, max_wait_ms)
