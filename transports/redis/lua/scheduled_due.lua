-- KEYS: index, marks; ARGV: most records
-- The mailboxes with messages due now (record, mark pairs), and the ms until the
-- next entry of the index falls due (-1: none), and now (ms).
local bad = wrong_type(KEYS[1], 'zset', KEYS[2], 'hash')
if bad then return bad end
local now = now_ms()
local out = {}
for _, record in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0,
    tonumber(ARGV[1]))) do
  out[#out + 1] = record
  out[#out + 1] = redis.call('HGET', KEYS[2], record) or ''
end
return {out, next_due(KEYS[1], now), now}
