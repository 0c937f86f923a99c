-- A report replaces the last one with the same key and moves every rollup by the difference.
-- KEYS: report hash, then the 7 rollup hashes (3 cells, 3 mix, totals).
-- ARGV: report field, self cell field, assisted cell field, self mix field, assisted mix field,
--       self, assisted.
local before = redis.call('HGET', KEYS[1], ARGV[1])
local before_self, before_assisted = 0, 0
if before then
  local comma = string.find(before, ',', 1, true)
  before_self = tonumber(string.sub(before, 1, comma - 1))
  before_assisted = tonumber(string.sub(before, comma + 1))
end
local self_change = tonumber(ARGV[6]) - before_self
local assisted_change = tonumber(ARGV[7]) - before_assisted
for i = 2, 4 do
  if self_change ~= 0 then redis.call('HINCRBY', KEYS[i], ARGV[2], self_change) end
  if assisted_change ~= 0 then redis.call('HINCRBY', KEYS[i], ARGV[3], assisted_change) end
end
for i = 5, 8 do
  if self_change ~= 0 then redis.call('HINCRBY', KEYS[i], ARGV[4], self_change) end
  if assisted_change ~= 0 then redis.call('HINCRBY', KEYS[i], ARGV[5], assisted_change) end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[6] .. ',' .. ARGV[7])
return {self_change, assisted_change}
