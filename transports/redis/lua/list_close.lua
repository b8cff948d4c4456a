-- KEYS: failures, closed, epochs, processing, list
-- ARGV: me, then payload, attempt pairs still held
local bad = wrong_type(KEYS[1], 'hash', KEYS[2], 'set', KEYS[3], 'hash', KEYS[4], 'list',
  KEYS[5], 'list')
if bad then return bad end
local held = {}
for i = 2, #ARGV, 2 do
  local field = redis.sha1hex(ARGV[i])
  local attempt = tonumber(ARGV[i + 1])
  if (tonumber(redis.call('HGET', KEYS[1], field)) or 0) < attempt then
    redis.call('HSET', KEYS[1], field, attempt)
  end
  held[ARGV[i]] = (held[ARGV[i]] or 0) + 1
end
-- What the consumer never handed out (moved by an interrupted fetch, or leftovers
-- it did not deliver yet) goes back to the head of the list, in order, uncounted.
local keep, back = {}, {}
for _, item in ipairs(redis.call('LRANGE', KEYS[4], 0, -1)) do
  if (held[item] or 0) > 0 then
    held[item] = held[item] - 1
    keep[#keep + 1] = item
  else
    back[#back + 1] = item
  end
end
if #back > 0 then
  redis.call('DEL', KEYS[4])
  chunked('RPUSH', KEYS[4], keep)
  for i = #back, 1, -1 do redis.call('LPUSH', KEYS[5], back[i]) end
end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1], ARGV[1] .. ' ack')
return #back
