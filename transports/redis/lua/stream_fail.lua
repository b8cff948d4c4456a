-- KEYS: stream, delayed of the group, failures
-- ARGV: group, then per failed entry: delay_ms, entry id, failure field, attempt
-- Failed attempts, in one script: count each, and park the entry in {delayed} until
-- it falls due (as stream_retry). Replies a count per entry: its failures so far, or
-- -1 (nothing done) when it is no longer pending.
local bad = wrong_type(KEYS[1], 'stream', KEYS[2], 'zset', KEYS[3], 'hash')
if bad then return bad end
local now, counts = now_ms(), {}
for i = 2, #ARGV, 4 do
  if park(KEYS[1], ARGV[1], KEYS[2], ARGV[i + 1], now + tonumber(ARGV[i])) then
    counts[#counts + 1] = raise_failures(KEYS[3], ARGV[i + 2], tonumber(ARGV[i + 3]))
  else
    counts[#counts + 1] = -1
  end
end
return counts
