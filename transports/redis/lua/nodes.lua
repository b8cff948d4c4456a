-- KEYS: nodes hash, expiry zset; returns node, value pairs of the live nodes
local bad = wrong_type(KEYS[1], 'hash', KEYS[2], 'zset')
if bad then return bad end
local now = now_ms()
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
if #expired > 0 then
  chunked('HDEL', KEYS[1], expired)
  chunked('ZREM', KEYS[2], expired)
end
local live = redis.call('ZRANGE', KEYS[2], 0, -1)
local out = {}
for _, node in ipairs(live) do
  local value = redis.call('HGET', KEYS[1], node)
  if value then
    out[#out + 1] = node
    out[#out + 1] = value
  end
end
return out
