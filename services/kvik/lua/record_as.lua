-- Needs kiosk_auth, stage, record_fn. A whole session with its token check in the same round
-- trip: KEYS token, session, kiosk, catalogue, outbox. ARGV base, token hash, rate, burst,
-- kiosk, entry, district (what the caller built the event with; 'stale' if the kiosk or its
-- entry changed since), then as record.lua.
local a = lookup(KEYS[1], ARGV[1], ARGV[2])
if a[1] ~= 'ok' then return a end
local wait = take(ARGV[1], a[2], ARGV[3], ARGV[4])
if wait > 0 then return {'limited', tostring(wait)} end
if a[2] ~= ARGV[5] then return {'forbidden'} end
if a[3] ~= ARGV[6] or a[4] ~= ARGV[7] then return {'stale'} end
return record(KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[8], ARGV[9], ARGV[10], ARGV[5],
  ARGV[11], ARGV[12])
