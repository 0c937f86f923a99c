-- Retiring keeps what the record was (the history still names it) and marks it retired, with
-- any further changes (an entry also becomes closed), unless a newer version is stored.
-- KEYS: the copy hash. ARGV: record id, version, then pairs of field name and its new value
-- as JSON, set in that order after "version" and "retired".
-- Returns 1 when written, 0 when the record is unknown or the stored version is newer.
local before = redis.call('HGET', KEYS[1], ARGV[1])
if not before then return 0 end
local state = cjson.decode(before)
if state['version'] and tonumber(state['version']) > tonumber(ARGV[2]) then return 0 end
state['version'] = tonumber(ARGV[2])
state['retired'] = true
for i = 3, #ARGV, 2 do
  state[ARGV[i]] = cjson.decode(ARGV[i + 1])
end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(state))
return 1
