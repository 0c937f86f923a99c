-- KEYS kiosk, new token, audit. ARGV kiosk, token hash, base, now, audit record. Only a revoked
-- kiosk is reinstated ('active' otherwise), with a new token. The newest 1,000 audit records
-- are kept.
if redis.call('EXISTS', KEYS[1]) == 0 then return 'unknown' end
if redis.call('HGET', KEYS[1], 'status') ~= 'revoked' then return 'active' end
redis.call('HSET', KEYS[1], 'token_hash', ARGV[2], 'token_issued_at', ARGV[4], 'status', 'active')
redis.call('SET', KEYS[2], ARGV[1])
redis.call('RPUSH', KEYS[3], ARGV[5])
redis.call('LTRIM', KEYS[3], -1000, -1)
return 'ok'
