-- KEYS: scheduled, mailbox; ARGV: kind, maxlen ('' none), expire_ms ('' none), most
-- Append the scheduled messages due now (up to ``most``) to the mailbox, in due
-- order; return the due time (ms) of the next one still waiting (-1: none), and now.
local scheduled, mailbox = KEYS[1], KEYS[2]
local kind = ARGV[1]
local bad = wrong_type(scheduled, 'zset', mailbox, kind)
if bad then return bad end
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', scheduled, '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))
if #due > 0 then
  local payloads = {}
  for i, member in ipairs(due) do
    payloads[i] = string.sub(member, string.find(member, ':', 1, true) + 1)
  end
  if kind == 'list' then
    chunked('RPUSH', mailbox, payloads)
    if ARGV[3] ~= '' then redis.call('PEXPIRE', mailbox, ARGV[3]) end
  else
    for _, payload in ipairs(payloads) do
      if ARGV[2] ~= '' then
        redis.call('XADD', mailbox, 'MAXLEN', '~', ARGV[2], '*', 'message', payload)
      else
        redis.call('XADD', mailbox, '*', 'message', payload)
      end
    end
  end
  chunked('ZREM', scheduled, due)
end
local first = redis.call('ZRANGE', scheduled, 0, 0, 'WITHSCORES')
if #first == 0 then return {-1, now} end
return {tonumber(first[2]), now}
