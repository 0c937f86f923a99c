-- Library. Who a token belongs to, and one token from that kiosk's bucket (server clock, so
-- replicas agree). Shared by the token check and the one-round-trip session post.
local function lookup(token_key, base, hash)
  local kid = redis.call('GET', token_key)
  if not kid then return {'unknown'} end
  local k = redis.call('HMGET', base .. 'kiosk:' .. kid, 'status', 'token_hash', 'entry_id',
    'district')
  if k[1] ~= 'active' or k[2] ~= hash then return {'revoked'} end
  local district = redis.call('HGET', base .. 'entry:' .. k[3], 'district')
  if not district or district == '' then district = k[4] end
  return {'ok', kid, k[3], district}
end

local function take(base, kid, rate, burst)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local rk = base .. 'rate:' .. kid
  local b = redis.call('HMGET', rk, 'tokens', 'ts')
  rate = tonumber(rate)
  burst = tonumber(burst)
  local tokens = tonumber(b[1]) or burst
  local ts = tonumber(b[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
  if tokens < 1 then return math.ceil((1 - tokens) * 1000 / rate) end
  redis.call('HSET', rk, 'tokens', tostring(tokens - 1), 'ts', tostring(now))
  redis.call('PEXPIRE', rk, math.ceil(burst / rate * 1000) + 1000)
  return 0
end
