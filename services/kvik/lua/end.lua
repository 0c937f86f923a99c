-- Needs stage. The end of a streamed session: KEYS session, kiosk, catalogue, open, outbox.
local cur = redis.call('HMGET', KEYS[1], 'state', 'fingerprint', 'result', 'rev', 'kiosk_id')
if cur[5] and cur[5] ~= ARGV[4] then return {'forbidden'} end
if cur[1] == 'ended' then
  if cur[2] == ARGV[2] then return {'replay', cur[3]} end
  return {'ended'}
end
if (cur[4] or '0') ~= ARGV[1] then return {'retry'} end
if redis.call('HGET', KEYS[2], 'status') ~= 'active' then return {'inactive'} end
if redis.call('SISMEMBER', KEYS[3], ARGV[5]) == 0 then return {'unknown-service'} end
redis.call('HSET', KEYS[1], 'state', 'ended', 'fingerprint', ARGV[2], 'result', ARGV[3],
  'kiosk_id', ARGV[4], 'service', ARGV[5], 'start_fp', ARGV[6], 'started_at', ARGV[7])
redis.call('HINCRBY', KEYS[1], 'rev', 1)
redis.call('ZREM', KEYS[4], ARGV[9])
redis.call('EXPIRE', KEYS[1], ARGV[8])
stage(KEYS[5], ARGV[10])
return {'created', ARGV[3]}
