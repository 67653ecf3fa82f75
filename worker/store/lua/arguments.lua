-- slice(): the variable part of KEYS or ARGV as a table of its own, so that a script names it
-- once, among its other keys and arguments (included, never run on its own).
local function slice(list, first, last)
  local part = {}
  for i = first, last do part[i - first + 1] = list[i] end
  return part
end
