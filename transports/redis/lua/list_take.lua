-- KEYS: list, processing, failures, delayed, consumers, closed, epochs
-- ARGV: count, durable, lease_ms, maintain, leftovers (0 none, 1 resync, 2 open),
--       me, processing key prefix, the acks (see ack_batch), then payloads whose
--       failures to look up...
local list, processing, failures, delayed = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local consumers, closed, epochs = KEYS[5], KEYS[6], KEYS[7]
local count, durable = tonumber(ARGV[1]), ARGV[2] == '1'
local lease, maintain, leftovers = tonumber(ARGV[3]), ARGV[4] == '1', ARGV[5]
local me, prefix = ARGV[6], ARGV[7]
local bad = wrong_type(list, 'list', processing, 'list', failures, 'hash', delayed, 'zset',
  consumers, 'zset', closed, 'set', epochs, 'hash')
if bad then return bad end
local now = now_ms()
local dead_ones = {}
if durable and maintain then
  dead_ones = redis.call('ZRANGEBYSCORE', consumers, '-inf', now - lease)
  for _, dead in ipairs(dead_ones) do
    bad = wrong_type(prefix .. dead, 'list')
    if bad then return bad end
  end
end
local acked, lookup = ack_batch(processing, failures, epochs, me, 8)
if acked == 0 then return {{}, {}, {}, -1, 0, ''} end  -- refused: acks come first
local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, 1000)
if #due > 0 then
  local payloads = {}
  for i, member in ipairs(due) do
    payloads[i] = string.sub(member, string.find(member, ':', 1, true) + 1)
  end
  chunked('RPUSH', list, payloads)
  chunked('ZREM', delayed, due)
end
if durable and maintain then
  redis.call('ZADD', consumers, now, me)
  for _, dead in ipairs(dead_ones) do
    if dead ~= me then
      local held = prefix .. dead
      local counted = redis.call('SREM', closed, dead) == 1
      local n = redis.call('LLEN', held)
      if n > 0 and not counted then
        for _, item in ipairs(redis.call('LRANGE', held, 0, -1)) do
          redis.call('HINCRBY', failures, redis.sha1hex(item), 1)
        end
      end
      for _ = 1, n do redis.call('LMOVE', held, list, 'RIGHT', 'LEFT') end
      redis.call('ZREM', consumers, dead)
      redis.call('HDEL', epochs, dead, dead .. ' ack')
    end
  end
end
local left, epoch = {}, ''
if durable and leftovers ~= '0' then
  left = redis.call('LRANGE', processing, 0, -1)
  if leftovers == '2' and redis.call('SREM', closed, me) == 0 then
    for _, item in ipairs(left) do redis.call('HINCRBY', failures, redis.sha1hex(item), 1) end
  end
  -- The consumer knows its processing list again: a new epoch (never reused).
  epoch = tostring(redis.call('HINCRBY', epochs, '{next}', 1))
  redis.call('HSET', epochs, me, epoch)
end
local items = {}
if count > 0 then items = redis.call('LPOP', list, count) or {} end
if durable and #items > 0 then chunked('RPUSH', processing, items) end
local counts = {}
if redis.call('EXISTS', failures) == 1 then
  local fields = {}
  for _, item in ipairs(left) do fields[#fields + 1] = redis.sha1hex(item) end
  for _, item in ipairs(items) do fields[#fields + 1] = redis.sha1hex(item) end
  for i = lookup, #ARGV do fields[#fields + 1] = redis.sha1hex(ARGV[i]) end
  for i = 1, #fields, 1000 do
    local got = redis.call('HMGET', failures, unpack(fields, i, math.min(i + 999, #fields)))
    for _, value in ipairs(got) do counts[#counts + 1] = tonumber(value) or 0 end
  end
end
return {items, left, counts, next_due(delayed, now), acked, epoch}
