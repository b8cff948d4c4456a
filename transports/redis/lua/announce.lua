-- KEYS: nodes hash, expiry zset
-- ARGV: node, value ('' removes), ttl_ms, instance, then '1' and the instance and
--       seen_at of the record it may replace (or '0', '', '0')
local bad = wrong_type(KEYS[1], 'hash', KEYS[2], 'zset')
if bad then return bad end
local held = redis.call('HGET', KEYS[1], ARGV[1])
if held and (tonumber(redis.call('ZSCORE', KEYS[2], ARGV[1])) or 0) > now_ms() then
  local ok, record = pcall(cjson.decode, held)
  if not (ok and type(record) == 'table') then return held end
  local holder = record['instance']
  if type(holder) ~= 'string' then holder = '' end  -- written before instances
  local replaced = ARGV[5] == '1' and holder == ARGV[6]
    and record['seen_at'] == tonumber(ARGV[7])
  if holder ~= ARGV[4] and not replaced then return held end
end
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('ZADD', KEYS[2], now_ms() + tonumber(ARGV[3]), ARGV[1])
end
return ''
