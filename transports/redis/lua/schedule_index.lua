-- KEYS: index, marks; ARGV: record, due (ms)
-- The mailbox ``record`` has a message due at ``due``: its index entry keeps the
-- earliest due time, and its mark is raised so that a promoter clearing the entry
-- meanwhile (it read the old mark) leaves it.
local bad = wrong_type(KEYS[1], 'zset', KEYS[2], 'hash')
if bad then return bad end
local due = tonumber(ARGV[2])
local score = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
if not score or due < score then redis.call('ZADD', KEYS[1], due, ARGV[1]) end
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
return 1
