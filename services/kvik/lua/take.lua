-- Needs stage. KEYS help, queue, outbox.
local cur = redis.call('HMGET', KEYS[1], 'state', 'queue')
if not cur[1] then return 'unknown' end
if cur[1] ~= 'waiting' then return 'taken' end
if cur[2] ~= ARGV[1] then return 'retry' end
redis.call('HSET', KEYS[1], 'state', 'answered', 'staff', ARGV[2], 'answered_ms', ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[4])
stage(KEYS[3], ARGV[5])
return 'ok'
