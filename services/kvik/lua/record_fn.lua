-- Library (needs stage). Record a whole session unless its id is taken: the same fingerprint
-- is a replay.
local function record(session, kiosk, catalogue, outbox, fp, result, ttl, kid, service, blob)
  local cur = redis.call('HMGET', session, 'state', 'fingerprint', 'result')
  if cur[1] then
    if cur[1] == 'ended' and cur[2] == fp then return {'replay', cur[3]} end
    return {'conflict', cur[1]}
  end
  if redis.call('HGET', kiosk, 'status') ~= 'active' then return {'inactive'} end
  if redis.call('SISMEMBER', catalogue, service) == 0 then return {'unknown-service'} end
  redis.call('HSET', session, 'state', 'ended', 'fingerprint', fp, 'result', result,
    'kiosk_id', kid, 'service', service)
  redis.call('EXPIRE', session, ttl)
  stage(outbox, blob)
  return {'created'}
end
