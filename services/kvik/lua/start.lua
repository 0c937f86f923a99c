-- The start of a streamed session: KEYS session, kiosk, catalogue, open.
local cur = redis.call('HMGET', KEYS[1], 'state', 'start_fp', 'kiosk_id')
if cur[3] and cur[3] ~= ARGV[2] then return {'forbidden'} end
if cur[2] then
  if cur[2] == ARGV[1] then return {'replay', cur[1]} end
  return {'conflict', cur[1]}
end
if cur[1] == 'ended' then return {'conflict', cur[1]} end
if redis.call('HGET', KEYS[2], 'status') ~= 'active' then return {'inactive'} end
if redis.call('SISMEMBER', KEYS[3], ARGV[3]) == 0 then return {'unknown-service'} end
redis.call('HSET', KEYS[1], 'state', 'open', 'kiosk_id', ARGV[2], 'entry_id', ARGV[5],
  'service', ARGV[3], 'started_at', ARGV[4], 'start_fp', ARGV[1])
local last = tonumber(redis.call('HGET', KEYS[1], 'last_at_ms') or '0')
if tonumber(ARGV[8]) > last then redis.call('HSET', KEYS[1], 'last_at_ms', ARGV[8]) end
redis.call('HINCRBY', KEYS[1], 'rev', 1)
redis.call('ZADD', KEYS[4], ARGV[9], ARGV[7])
redis.call('EXPIRE', KEYS[1], ARGV[6])
return {'created', 'open'}
