-- Forget a quarantined item and delete its record: KEYS quarantine, record (or the quarantine
-- again when there is none). ARGV field, the entry as read.
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
if KEYS[2] ~= KEYS[1] then redis.call('DEL', KEYS[2]) end
return 1
