-- KEYS: owners zset (owner -> expiry, ms, server clock), leases hash (partition ->
--       '<expiry ms> <owner>')
-- ARGV: owner, partitions, ttl_ms, leave ('1': deregister), keep (the partitions the
--       owner still consumes, separated by spaces)
-- Reply: the partitions the owner holds now (its leases renewed or taken), the ones
-- among them it should consume, and how many owners are live.
local bad = wrong_type(KEYS[1], 'zset', KEYS[2], 'hash')
if bad then return bad end
local now = now_ms()
local owner = ARGV[1]
local count = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
if ARGV[4] == '1' then
  redis.call('ZREM', KEYS[1], owner)
else
  redis.call('ZADD', KEYS[1], now + ttl, owner)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local live = redis.call('ZRANGE', KEYS[1], 0, -1)
table.sort(live)
local index = -1
for i, name in ipairs(live) do
  if name == owner then index = i - 1 end
end
local keep = {}
for p in string.gmatch(ARGV[5], '%d+') do keep[tonumber(p)] = true end
local held, wanted = {}, {}
for p = 0, count - 1 do
  local desired = index >= 0 and p % #live == index
  local lease = redis.call('HGET', KEYS[2], p)
  local holder, expiry = nil, 0
  if lease then
    local space = string.find(lease, ' ', 1, true)
    expiry = tonumber(string.sub(lease, 1, space - 1))
    holder = string.sub(lease, space + 1)
  end
  if holder == owner then
    if desired or keep[p] then
      redis.call('HSET', KEYS[2], p, (now + ttl) .. ' ' .. owner)
      held[#held + 1] = p
      if desired then wanted[#wanted + 1] = p end
    else
      redis.call('HDEL', KEYS[2], p)
    end
  elseif desired and (holder == nil or expiry <= now) then
    redis.call('HSET', KEYS[2], p, (now + ttl) .. ' ' .. owner)
    held[#held + 1] = p
    wanted[#wanted + 1] = p
  end
end
return {held, wanted, #live}
