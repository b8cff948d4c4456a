-- KEYS: delayed, processing, failures; ARGV: token, delay_ms, payload, '1' if held
-- (at-least-once), failure field, attempt
-- A failed attempt, in one script: count it, and schedule the message again (as
-- list_retry). -1 (nothing done) when the message is no longer ours.
local bad = wrong_type(KEYS[1], 'zset', KEYS[2], 'list', KEYS[3], 'hash')
if bad then return bad end
if redis.call('LREM', KEYS[2], 1, ARGV[3]) == 0 and ARGV[4] == '1' then
  return -1  -- its lease lapsed and another consumer took it over
end
redis.call('ZADD', KEYS[1], now_ms() + tonumber(ARGV[2]), ARGV[1] .. ':' .. ARGV[3])
return raise_failures(KEYS[3], ARGV[5], tonumber(ARGV[6]))
