-- KEYS: dead, failures, list/processing or stream (or the channel), delayed
-- ARGV: kind, group, how many dead letters to keep ('' for all), '1' if the messages
--       are held in a processing list (an at-least-once list), then per failed
--       attempt: failure field ('' when none is kept), attempt, payload, entry id,
--       delay_ms ('' to keep it held), max deliveries, token, reason, actor,
--       error_type, error, traceback
-- Failed attempts, in one script: count each (the larger of its count and its
-- attempt) and decide: dead-letter it at max deliveries (as dead_letter), else
-- schedule it again (as list_fail / stream_fail), keep it held, or drop it (pub/sub).
-- Replies per attempt: {verdict, count, dead letter id or ''}; 'taken_over' (nothing
-- done) when it is no longer ours.
local kind, group, maxlen, held = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local bad = wrong_type(KEYS[1], 'stream', KEYS[2], 'hash', KEYS[4], 'zset')
if not bad and (kind == 'list' or kind == 'stream') then bad = wrong_type(KEYS[3], kind) end
if bad then return bad end
local now = now_ms()
local t = redis.call('TIME')
local dead_at = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
local out = {}
for i = 5, #ARGV, 12 do
  local field, payload, entry_id = ARGV[i], ARGV[i + 2], ARGV[i + 3]
  local delay, most = ARGV[i + 4], tonumber(ARGV[i + 5])
  local count = tonumber(ARGV[i + 1])
  if field ~= '' then
    count = math.max(count, tonumber(redis.call('HGET', KEYS[2], field)) or 0)
  end
  if count >= most then
    if held == '1' and redis.call('LREM', KEYS[3], 1, payload) == 0 then
      out[#out + 1] = {'taken_over', count, ''}  -- its lease lapsed, another took it
    else
      if field ~= '' then redis.call('HDEL', KEYS[2], field) end
      local fields = {'payload', payload, 'reason', ARGV[i + 7], 'actor', ARGV[i + 8],
        'error_type', ARGV[i + 9], 'error', ARGV[i + 10], 'traceback', ARGV[i + 11],
        'attempts', count, 'dead_at', dead_at}
      if kind == 'stream' then
        -- An entry another client wrote with fields of its own keeps them (as in
        -- dead_letter.lua), so that a replay writes the same entry back.
        local found = redis.call('XRANGE', KEYS[3], entry_id, entry_id)
        local entry = found[1] and found[1][2] or {}
        if #entry <= 7000 and not (#entry == 2 and entry[1] == 'message') then
          for j = 1, #entry, 2 do
            fields[#fields + 1] = 'entry:' .. entry[j]
            fields[#fields + 1] = entry[j + 1]
          end
        end
      end
      local id
      if maxlen ~= '' then
        id = redis.call('XADD', KEYS[1], 'MAXLEN', maxlen, '*', unpack(fields))
      else
        id = redis.call('XADD', KEYS[1], '*', unpack(fields))
      end
      if kind == 'list' and held ~= '1' then
        redis.call('LREM', KEYS[3], 1, payload)
      elseif kind == 'stream' then
        redis.call('XACK', KEYS[3], group, entry_id)
      end
      out[#out + 1] = {'dead', count, id}
    end
  elseif kind == 'pubsub' then
    out[#out + 1] = {'dropped', count, ''}
  elseif delay == '' then
    out[#out + 1] = {'held', raise_failures(KEYS[2], field, count), ''}
  elseif kind == 'list' then
    if held == '1' and redis.call('LREM', KEYS[3], 1, payload) == 0 then
      out[#out + 1] = {'taken_over', count, ''}
    else
      redis.call('ZADD', KEYS[4], now + tonumber(delay), ARGV[i + 6] .. ':' .. payload)
      out[#out + 1] = {'retried', raise_failures(KEYS[2], field, count), ''}
    end
  elseif park(KEYS[3], group, KEYS[4], entry_id, now + tonumber(delay)) then
    out[#out + 1] = {'retried', raise_failures(KEYS[2], field, count), ''}
  else
    out[#out + 1] = {'taken_over', count, ''}
  end
end
return out
