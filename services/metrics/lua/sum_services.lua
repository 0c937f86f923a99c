-- The contacts of some services summed per district|channel|mode, for each of several `cells`
-- rollups, read with HMGET of just their fields (a read: nothing is written).
-- KEYS: the cells hashes. ARGV: the number of prefixes P, P prefixes (district|channel|mode),
-- then the service codes. Returns per key a flat list {prefix index (1-based), sum, ...} of the
-- prefixes with contacts.
local count = tonumber(ARGV[1])
local fields = {}
for p = 1, count do
  for s = count + 2, #ARGV do
    fields[#fields + 1] = ARGV[p + 1] .. '|' .. ARGV[s]
  end
end
local per_prefix = #ARGV - count - 1
local result = {}
for k = 1, #KEYS do
  local values = redis.call('HMGET', KEYS[k], unpack(fields))
  local sums = {}
  for p = 1, count do
    local sum = 0
    for s = 1, per_prefix do
      local value = values[(p - 1) * per_prefix + s]
      if value then sum = sum + tonumber(value) end
    end
    if sum ~= 0 then
      sums[#sums + 1] = p
      sums[#sums + 1] = sum
    end
  end
  result[k] = sums
end
return result
