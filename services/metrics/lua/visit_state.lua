-- A visit's state event counts once per state, however often the state is re-published.
-- KEYS: visits hash, mobile totals, mobile day. ARGV: visit id, new state, district,
--       staffed seconds (for completed).
local before = redis.call('HGET', KEYS[1], ARGV[1])
local state = ARGV[2]
if before == state or before == 'completed' or before == 'cancelled' then return 0 end
if state == 'planned' and before then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], state)
redis.call('HINCRBY', KEYS[2], ARGV[3] .. '|' .. state, 1)
if state == 'completed' then
  redis.call('HINCRBY', KEYS[2], ARGV[3] .. '|staffed_seconds', ARGV[4])
  redis.call('HINCRBY', KEYS[3], ARGV[3] .. '|completed', 1)
  redis.call('HINCRBY', KEYS[3], ARGV[3] .. '|staffed_seconds', ARGV[4])
end
if before == nil or before == false then
  if state ~= 'planned' then redis.call('HINCRBY', KEYS[2], ARGV[3] .. '|planned', 1) end
end
return 1
