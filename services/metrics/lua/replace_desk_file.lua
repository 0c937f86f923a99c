-- A day file replaces the entry's previous file of that day exactly: take back what the previous
-- one added (its stored contribution), add the new one, keep the new one for the next file.
-- Only the difference is written. KEYS: the desk:file:<day> hash. ARGV: entry id, the new
-- contribution as JSON [[key, field, amount], ...]. The rollup keys are named in the
-- contributions (they are all keys of this service in one standalone Valkey/Redis).
local change = {}
local function add(list, sign)
  for _, item in ipairs(list) do
    local fields = change[item[1]]
    if not fields then fields = {}; change[item[1]] = fields end
    fields[item[2]] = (fields[item[2]] or 0) + sign * item[3]
  end
end
local before = redis.call('HGET', KEYS[1], ARGV[1])
if before then add(cjson.decode(before), -1) end
add(cjson.decode(ARGV[2]), 1)
for key, fields in pairs(change) do
  for name, amount in pairs(fields) do
    if amount ~= 0 then redis.call('HINCRBY', key, name, string.format('%d', amount)) end
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
