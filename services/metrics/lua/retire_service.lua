-- A retired service keeps its needs group. KEYS: catalogue hash. ARGV: service code.
local before = redis.call('HGET', KEYS[1], ARGV[1])
local group = 'general'
if before then group = string.match(before, '|(.*)$') or 'general' end
redis.call('HSET', KEYS[1], ARGV[1], 'retired|' .. group)
return 1
