local bad = wrong_type(KEYS[1], 'hash')
if bad then return bad end
local failures = tonumber(redis.call('HGET', KEYS[1], ARGV[1])) or 0
local attempt = tonumber(ARGV[2])
if failures < attempt then
  failures = attempt
  redis.call('HSET', KEYS[1], ARGV[1], failures)
end
return failures
