-- Steps of a streamed session: KEYS session, kiosk, open. ARGV[5..] = (seq, code, at_ms)*.
local cur = redis.call('HMGET', KEYS[1], 'state', 'kiosk_id')
if cur[2] and cur[2] ~= ARGV[1] then return {'forbidden'} end
local n = tonumber(ARGV[4])
local fresh = {}
for i = 0, n - 1 do
  local have = redis.call('HGET', KEYS[1], 's:' .. ARGV[5 + i * 3])
  if have then
    if have ~= ARGV[6 + i * 3] then return {'conflict', cur[1] or ''} end
  else
    table.insert(fresh, i)
  end
end
if cur[1] == 'ended' then
  if #fresh == 0 then return {'replay', 'ended'} end
  return {'ended'}
end
if #fresh == 0 then return {'replay', cur[1]} end
if redis.call('HGET', KEYS[2], 'status') ~= 'active' then return {'inactive'} end
if not cur[1] then
  redis.call('HSET', KEYS[1], 'state', 'open', 'kiosk_id', ARGV[1])
end
local last = tonumber(redis.call('HGET', KEYS[1], 'last_at_ms') or '0')
for _, i in ipairs(fresh) do
  redis.call('HSET', KEYS[1], 's:' .. ARGV[5 + i * 3], ARGV[6 + i * 3])
  local at = tonumber(ARGV[7 + i * 3])
  if at > last then last = at end
end
redis.call('HSET', KEYS[1], 'last_at_ms', tostring(last))
redis.call('HINCRBY', KEYS[1], 'rev', 1)
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[5 + n * 3])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return {'created', 'open'}
