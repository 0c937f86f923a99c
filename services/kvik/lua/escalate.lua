-- KEYS help, from queue, to queue.
local cur = redis.call('HMGET', KEYS[1], 'state', 'queue', 'requested_ms')
if cur[1] ~= 'waiting' or cur[2] ~= ARGV[1] then
  redis.call('ZREM', KEYS[2], ARGV[4])
  return 0
end
if tonumber(cur[3]) > tonumber(ARGV[3]) then return 0 end
redis.call('ZREM', KEYS[2], ARGV[4])
redis.call('ZADD', KEYS[3], cur[3], ARGV[4])
redis.call('HSET', KEYS[1], 'queue', ARGV[2], 'escalated', '1')
return 1
