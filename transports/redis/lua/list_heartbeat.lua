local bad = wrong_type(KEYS[1], 'zset')
if bad then return bad end
redis.call('ZADD', KEYS[1], now_ms(), ARGV[1])
return 1
