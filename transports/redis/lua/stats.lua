-- KEYS: mailbox, dead, consumers (list) or delayed of the group (stream)
-- ARGV: kind, group, processing key prefix
local kind = ARGV[1]
local bad = wrong_type(KEYS[2], 'stream', KEYS[3], 'zset')
if not bad and kind ~= 'pubsub' then bad = wrong_type(KEYS[1], kind) end
if bad then return bad end
local dead = redis.call('XLEN', KEYS[2])
if kind == 'list' then
  local pending = 0
  for _, name in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
    bad = wrong_type(ARGV[3] .. name, 'list')
    if bad then return bad end
    pending = pending + redis.call('LLEN', ARGV[3] .. name)
  end
  return {redis.call('LLEN', KEYS[1]), pending, dead}
end
if kind ~= 'stream' or redis.call('EXISTS', KEYS[1]) == 0 then return {0, 0, dead} end
for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local info = {}
  for i = 1, #group, 2 do info[group[i]] = group[i + 1] end
  if info['name'] == ARGV[2] then
    local waiting = redis.call('ZCARD', KEYS[3])
    local due = redis.call('ZCOUNT', KEYS[3], '-inf', due_by(now_ms()))
    local lag = tonumber(info['lag'])
    if not lag then lag = redis.call('XLEN', KEYS[1]) end
    return {lag + due, info['pending'] - waiting, dead}
  end
end
return {redis.call('XLEN', KEYS[1]), 0, dead}
