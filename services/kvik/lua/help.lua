-- Needs stage. KEYS help, queue, kiosk, outbox.
local fp = redis.call('HGET', KEYS[1], 'fingerprint')
if fp then
  if fp == ARGV[1] then return 'replay' end
  return 'conflict'
end
if redis.call('HGET', KEYS[3], 'status') ~= 'active' then return 'inactive' end
redis.call('HSET', KEYS[1], 'fingerprint', ARGV[1], 'state', 'waiting', 'queue', ARGV[2],
  'requested_ms', ARGV[3], 'requested', ARGV[4], 'escalated', '0')
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[6])
stage(KEYS[4], ARGV[7])
return 'created'
