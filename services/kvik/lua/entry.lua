-- KEYS entry, entries. A registry upsert or retirement, applied only if newer.
local v = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if tonumber(ARGV[1]) <= v then return 0 end
if ARGV[2] == 'retired' then
  redis.call('HSET', KEYS[1], 'version', ARGV[1], 'status', 'retired')
else
  redis.call('HSET', KEYS[1], 'version', ARGV[1], 'kind', ARGV[2], 'district', ARGV[3],
    'status', ARGV[4], 'hours', ARGV[5])
end
redis.call('SADD', KEYS[2], ARGV[6])
return 1
