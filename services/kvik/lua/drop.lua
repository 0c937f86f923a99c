-- An idle session that never started (only steps came): forgotten, no event.
local cur = redis.call('HMGET', KEYS[1], 'state', 'rev', 'start_fp')
local score = redis.call('ZSCORE', KEYS[2], ARGV[2])
if score and tonumber(score) > tonumber(ARGV[3]) then return 0 end
if cur[1] == 'open' and (cur[2] ~= ARGV[1] or cur[3]) then return 0 end
redis.call('ZREM', KEYS[2], ARGV[2])
if cur[1] == 'open' then redis.call('DEL', KEYS[1]) end
return 1
