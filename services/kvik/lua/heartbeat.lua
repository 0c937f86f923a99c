-- Needs stage. KEYS kiosk, seen, outbox. The online event is staged only by the heartbeat
-- that flips it.
local k = redis.call('HMGET', KEYS[1], 'status', 'online')
if k[1] ~= 'active' then return 'inactive' end
redis.call('HSET', KEYS[1], 'software_version', ARGV[2], 'state', ARGV[3], 'last_seen', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
if k[2] ~= '1' then
  redis.call('HSET', KEYS[1], 'online', '1')
  stage(KEYS[3], ARGV[6])
  return 'online'
end
return 'ok'
