-- Needs stage. The sweeper's claim on an idle session: KEYS session, open, outbox. 1 if this
-- call won.
local cur = redis.call('HMGET', KEYS[1], 'state', 'rev')
if cur[1] ~= 'open' or cur[2] ~= ARGV[1] then return 0 end
local score = redis.call('ZSCORE', KEYS[2], ARGV[4])
if not score or tonumber(score) > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'state', 'ended', 'fingerprint', 'swept', 'result', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'rev', 1)
redis.call('ZREM', KEYS[2], ARGV[4])
stage(KEYS[3], ARGV[5])
return 1
