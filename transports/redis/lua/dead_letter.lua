-- KEYS: dead, failures, list/processing or stream
-- ARGV: kind, failure field, attempt, payload, reason, actor, error_type, error,
--       traceback, group, entry id, how many dead letters to keep ('' for all),
--       '1' if the message is held in a processing list (an at-least-once list)
local kind, field = ARGV[1], ARGV[2]
local bad = wrong_type(KEYS[1], 'stream', KEYS[2], 'hash')
if not bad and (kind == 'list' or kind == 'stream') then bad = wrong_type(KEYS[3], kind) end
if bad then return bad end
if ARGV[13] == '1' and redis.call('LREM', KEYS[3], 1, ARGV[4]) == 0 then
  return 0  -- no longer ours: its lease lapsed and another consumer took it over
end
local attempts = tonumber(ARGV[3])
if field ~= '' then
  attempts = math.max(attempts, tonumber(redis.call('HGET', KEYS[2], field)) or 0)
  redis.call('HDEL', KEYS[2], field)
end
local t = redis.call('TIME')
local fields = {'payload', ARGV[4], 'reason', ARGV[5], 'actor', ARGV[6],
  'error_type', ARGV[7], 'error', ARGV[8], 'traceback', ARGV[9], 'attempts', attempts,
  'dead_at', t[1] .. '.' .. string.format('%06d', tonumber(t[2]))}
if kind == 'stream' then
  -- An entry another client wrote with fields of its own: keep every one of them
  -- ('entry:' before its name), so that a replay writes the same entry back. Up to
  -- 3,500 fields: Lua unpacks at most ~8,000 values into a command.
  local found = redis.call('XRANGE', KEYS[3], ARGV[11], ARGV[11])
  local entry = found[1] and found[1][2] or {}
  if #entry <= 7000 and not (#entry == 2 and entry[1] == 'message') then
    for j = 1, #entry, 2 do
      fields[#fields + 1] = 'entry:' .. entry[j]
      fields[#fields + 1] = entry[j + 1]
    end
  end
end
local id
if ARGV[12] ~= '' then  -- exact: dead letters are rare, and their count is documented
  id = redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[12], '*', unpack(fields))
else
  id = redis.call('XADD', KEYS[1], '*', unpack(fields))
end
if kind == 'list' and ARGV[13] ~= '1' then
  redis.call('LREM', KEYS[3], 1, ARGV[4])
elseif kind == 'stream' then
  redis.call('XACK', KEYS[3], ARGV[10], ARGV[11])
end
return id
