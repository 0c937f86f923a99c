-- A registry copy keeps the newest version of each record: the registry's events can be
-- re-delivered, and a re-driven old event must not undo a newer state.
-- KEYS: the copy hash. ARGV: record id, version, the record's state as JSON (with "version").
-- Returns 1 when written, 0 when the stored version is the same or newer.
local before = redis.call('HGET', KEYS[1], ARGV[1])
if before then
  local version = cjson.decode(before)['version']
  if version and tonumber(version) >= tonumber(ARGV[2]) then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
