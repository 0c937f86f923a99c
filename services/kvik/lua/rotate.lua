-- KEYS kiosk, new token, audit. ARGV kiosk, token hash, base, now, audit record. A new token
-- replaces the old one of an active kiosk; a revoked kiosk stays revoked ('revoked'): it comes
-- back only through the explicit, audited reinstate. The newest 1,000 audit records are kept.
if redis.call('EXISTS', KEYS[1]) == 0 then return 'unknown' end
local k = redis.call('HMGET', KEYS[1], 'status', 'token_hash')
if k[1] ~= 'active' then return 'revoked' end
if k[2] then redis.call('DEL', ARGV[3] .. 'token:' .. k[2]) end
redis.call('HSET', KEYS[1], 'token_hash', ARGV[2], 'token_issued_at', ARGV[4])
redis.call('SET', KEYS[2], ARGV[1])
redis.call('RPUSH', KEYS[3], ARGV[5])
redis.call('LTRIM', KEYS[3], -1000, -1)
return 'ok'
