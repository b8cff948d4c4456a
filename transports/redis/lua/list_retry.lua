-- KEYS: delayed, processing; ARGV: token, delay_ms, payload, '1' if held (at-least-once)
local bad = wrong_type(KEYS[1], 'zset', KEYS[2], 'list')
if bad then return bad end
if redis.call('LREM', KEYS[2], 1, ARGV[3]) == 0 and ARGV[4] == '1' then
  return 0  -- no longer ours: its lease lapsed and another consumer took it over
end
redis.call('ZADD', KEYS[1], now_ms() + tonumber(ARGV[2]), ARGV[1] .. ':' .. ARGV[3])
return 1
