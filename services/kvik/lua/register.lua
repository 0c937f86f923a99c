-- Needs stage. KEYS kiosk, token, kiosks, outbox, entry.
if redis.call('EXISTS', KEYS[1]) == 1 then return 'exists' end
if redis.call('HGET', KEYS[5], 'version') ~= ARGV[6] then return 'retry' end
redis.call('HSET', KEYS[1], 'kiosk_id', ARGV[1], 'entry_id', ARGV[2], 'token_hash', ARGV[3],
  'registered_at', ARGV[4], 'district', ARGV[5], 'status', 'active')
redis.call('SET', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
stage(KEYS[4], ARGV[7])
return 'ok'
