-- KEYS: dead, failures, list/processing or stream
-- ARGV: kind, group, how many dead letters to keep ('' for all), '1' if the messages
--       are held in a processing list (an at-least-once list), then per message:
--       failure field, attempt, payload, reason, actor, error_type, error, traceback,
--       entry id
-- Replies a dead letter id per message, or 0 (nothing done for it) when it is no
-- longer ours.
local kind, group, maxlen, held = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local bad = wrong_type(KEYS[1], 'stream', KEYS[2], 'hash')
if not bad and (kind == 'list' or kind == 'stream') then bad = wrong_type(KEYS[3], kind) end
if bad then return bad end
local t = redis.call('TIME')
local dead_at = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
local ids = {}
for i = 5, #ARGV, 9 do
  local field, payload, entry_id = ARGV[i], ARGV[i + 2], ARGV[i + 8]
  if held == '1' and redis.call('LREM', KEYS[3], 1, payload) == 0 then
    ids[#ids + 1] = 0  -- no longer ours: its lease lapsed and another consumer took it
  else
    local attempts = tonumber(ARGV[i + 1])
    if field ~= '' then
      attempts = math.max(attempts, tonumber(redis.call('HGET', KEYS[2], field)) or 0)
      redis.call('HDEL', KEYS[2], field)
    end
    local fields = {'payload', payload, 'reason', ARGV[i + 3], 'actor', ARGV[i + 4],
      'error_type', ARGV[i + 5], 'error', ARGV[i + 6], 'traceback', ARGV[i + 7],
      'attempts', attempts, 'dead_at', dead_at}
    if kind == 'stream' then
      -- An entry another client wrote with fields of its own: keep every one of them
      -- ('entry:' before its name), so that a replay writes the same entry back. Up
      -- to 3,500 fields: Lua unpacks at most ~8,000 values into a command.
      local found = redis.call('XRANGE', KEYS[3], entry_id, entry_id)
      local entry = found[1] and found[1][2] or {}
      if #entry <= 7000 and not (#entry == 2 and entry[1] == 'message') then
        for j = 1, #entry, 2 do
          fields[#fields + 1] = 'entry:' .. entry[j]
          fields[#fields + 1] = entry[j + 1]
        end
      end
    end
    if maxlen ~= '' then  -- exact: dead letters are rare, and their count is documented
      ids[#ids + 1] = redis.call('XADD', KEYS[1], 'MAXLEN', maxlen, '*', unpack(fields))
    else
      ids[#ids + 1] = redis.call('XADD', KEYS[1], '*', unpack(fields))
    end
    if kind == 'list' and held ~= '1' then
      redis.call('LREM', KEYS[3], 1, payload)
    elseif kind == 'stream' then
      redis.call('XACK', KEYS[3], group, entry_id)
    end
  end
end
return ids
