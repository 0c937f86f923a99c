-- Needs stage. KEYS kiosk, seen, outbox. 1 if this call flipped the kiosk offline.
if redis.call('HGET', KEYS[1], 'online') ~= '1' then return 0 end
if redis.call('HGET', KEYS[1], 'status') ~= 'active' then return 0 end
local s = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not s or tonumber(s) > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'online', '0')
-- Out of the watch list until its next heartbeat: offline kiosks must not crowd the check.
redis.call('ZREM', KEYS[2], ARGV[1])
stage(KEYS[3], ARGV[3])
return 1
