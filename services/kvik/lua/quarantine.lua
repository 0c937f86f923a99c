-- Move an item a loop could not process out of its sorted set into the quarantine: KEYS set,
-- quarantine. ARGV member, field, entry JSON (without the score). 1 if this call moved it (a
-- replica that failed on the same item meanwhile finds it gone: the item is quarantined once).
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
local entry = cjson.decode(ARGV[3])
entry['score'] = score
redis.call('HSET', KEYS[2], ARGV[2], cjson.encode(entry))
return 1
