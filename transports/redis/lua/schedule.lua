-- KEYS: scheduled; ARGV: delay_ms, token, payloads...
-- Each payload waits as '<token>.<i>:<payload>' (the token keeps equal payloads apart)
-- until now + delay_ms; returns that due time (ms, server clock).
local bad = wrong_type(KEYS[1], 'zset')
if bad then return bad end
local due = now_ms() + tonumber(ARGV[1])
local members = {}
for i = 3, #ARGV do
  members[#members + 1] = due
  members[#members + 1] = ARGV[2] .. '.' .. (i - 2) .. ':' .. ARGV[i]
end
for i = 1, #members, 1000 do
  redis.call('ZADD', KEYS[1], unpack(members, i, math.min(i + 999, #members)))
end
return due
