-- KEYS: index, marks; ARGV: record, mark read, next due (ms; -1: none)
-- A promoter is done with ``record``: its index entry becomes the next due time, or
-- goes, unless a delayed send came in since the promoter read ``mark`` (then the
-- entry stays due, and the next pass looks again).
local bad = wrong_type(KEYS[1], 'zset', KEYS[2], 'hash')
if bad then return bad end
if (redis.call('HGET', KEYS[2], ARGV[1]) or '') ~= ARGV[2] then return 0 end
if ARGV[3] == '-1' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
end
return 1
