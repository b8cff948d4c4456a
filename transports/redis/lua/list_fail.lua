-- KEYS: delayed, processing, failures
-- ARGV: '1' if held (at-least-once), then per failed message: token, delay_ms,
--       payload, failure field, attempt
-- Failed attempts, in one script: count each, and schedule the message again (as
-- list_retry). Replies a count per message: its failures so far, or -1 (nothing done)
-- when it is no longer ours.
local bad = wrong_type(KEYS[1], 'zset', KEYS[2], 'list', KEYS[3], 'hash')
if bad then return bad end
local now, counts = now_ms(), {}
for i = 2, #ARGV, 5 do
  if redis.call('LREM', KEYS[2], 1, ARGV[i + 2]) == 0 and ARGV[1] == '1' then
    counts[#counts + 1] = -1  -- its lease lapsed and another consumer took it over
  else
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[i + 1]), ARGV[i] .. ':' .. ARGV[i + 2])
    counts[#counts + 1] = raise_failures(KEYS[3], ARGV[i + 3], tonumber(ARGV[i + 4]))
  end
end
return counts
