-- Needs kiosk_auth. KEYS token. ARGV base, token hash, rate, burst.
local a = lookup(KEYS[1], ARGV[1], ARGV[2])
if a[1] ~= 'ok' then return a end
local wait = take(ARGV[1], a[2], ARGV[3], ARGV[4])
if wait > 0 then return {'limited', a[2], a[3], a[4], tostring(wait)} end
return {'ok', a[2], a[3], a[4], '0'}
