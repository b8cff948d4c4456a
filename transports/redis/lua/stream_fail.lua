-- KEYS: stream, delayed of the group, failures; ARGV: group, delay_ms, entry id,
-- failure field, attempt
-- A failed attempt, in one script: count it, and park the entry in {delayed} until
-- it falls due (as stream_retry). -1 (nothing done) when it is no longer pending.
local bad = wrong_type(KEYS[1], 'stream', KEYS[2], 'zset', KEYS[3], 'hash')
if bad then return bad end
if not park(KEYS[1], ARGV[1], KEYS[2], ARGV[3], now_ms() + tonumber(ARGV[2])) then
  return -1
end
return raise_failures(KEYS[3], ARGV[4], tonumber(ARGV[5]))
