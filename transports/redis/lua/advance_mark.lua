-- KEYS: marks; ARGV: name, due (ms)
-- Raise the mark of ``name`` to ``due`` if it is lower or unset: 1 (the caller owns
-- that due time), else 0 (another process raised it first, or further).
local bad = wrong_type(KEYS[1], 'hash')
if bad then return bad end
local mark = tonumber(redis.call('HGET', KEYS[1], ARGV[1]))
if mark and mark >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
