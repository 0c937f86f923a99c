-- KEYS kiosk, seen, audit. ARGV kiosk, base, audit record (written when the kiosk was active).
-- The newest 1,000 audit records are kept.
if redis.call('EXISTS', KEYS[1]) == 0 then return 'unknown' end
local k = redis.call('HMGET', KEYS[1], 'status', 'token_hash')
if k[2] then redis.call('DEL', ARGV[2] .. 'token:' .. k[2]) end
redis.call('HDEL', KEYS[1], 'token_hash')
redis.call('HSET', KEYS[1], 'status', 'revoked')
redis.call('ZREM', KEYS[2], ARGV[1])
if k[1] == 'active' then
  redis.call('RPUSH', KEYS[3], ARGV[3])
  redis.call('LTRIM', KEYS[3], -1000, -1)
end
return 'ok'
