-- Put a quarantined item back where it came from: KEYS set, quarantine. ARGV field, the entry
-- as read (refused if it changed meanwhile), member, score.
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
