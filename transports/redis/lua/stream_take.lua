-- KEYS: stream, failures, delayed of the group
-- ARGV: group, me, count, history cursor ('' to skip), claim (0/1), lease_ms,
--       claim cursor, read new (0/1), most entries to claim
local stream, failures, delayed = KEYS[1], KEYS[2], KEYS[3]
local bad = wrong_type(stream, 'stream', failures, 'hash', delayed, 'zset')
if bad then return bad end
local group, me, count = ARGV[1], ARGV[2], tonumber(ARGV[3])
local history, claim_cursor = ARGV[4], ARGV[7]
local now = now_ms()
local has_failures = redis.call('EXISTS', failures) == 1
local function failed(id)
  if not has_failures then return 0 end
  return tonumber(redis.call('HGET', failures, group .. ':' .. id)) or 0
end
local function deliveries(id)
  local pending = redis.call('XPENDING', stream, group, id, id, 1)
  if pending[1] then return tonumber(pending[1][4]) end
  return 1
end
local function drop(id)
  redis.call('XACK', stream, group, id)
  redis.call('HDEL', failures, group .. ':' .. id)
end
local out = {}
if history ~= '' then
  local read = redis.call('XREADGROUP', 'GROUP', group, me, 'COUNT', count,
    'STREAMS', stream, history)
  local entries = (read and read[1] and read[1][2]) or {}
  for _, entry in ipairs(entries) do
    history = entry[1]
    if entry[2] then
      out[#out + 1] = {entry[1], entry[2],
        math.max(1 + failed(entry[1]), deliveries(entry[1]))}
    else
      drop(entry[1])
    end
  end
  if #entries < count then history = '' end
  count = count - #entries
end
if count > 0 then
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', delayed, '-inf', due_by(now), 'LIMIT', 0, count)) do
    redis.call('ZREM', delayed, id)
    -- The delivery count becomes the attempt, so that a crash of this delivery
    -- counts as a failed attempt for whoever claims the entry next.
    local attempt = 1 + failed(id)
    if #redis.call('XCLAIM', stream, group, me, 0, id, 'RETRYCOUNT', attempt, 'JUSTID') > 0 then
      local found = redis.call('XRANGE', stream, id, id)
      if #found > 0 then
        out[#out + 1] = {id, found[1][2], attempt}
        count = count - 1
      else
        drop(id)
      end
    end
  end
end
if ARGV[5] == '1' then
  -- Claims happen once a lease/2, whatever this fetch takes: what it does not take
  -- becomes due now for the whole group, its silent holder's attempt counted as a
  -- failure (as the delivery below counts it), rather than waiting for the next claim.
  local claimed = redis.call('XAUTOCLAIM', stream, group, me, ARGV[6], claim_cursor,
    'COUNT', math.max(count, tonumber(ARGV[9])), 'JUSTID')
  claim_cursor = claimed[1]
  local taken, parked = {}, 0
  for _, id in ipairs(claimed[2]) do
    if redis.call('ZSCORE', delayed, id) then
      redis.call('XCLAIM', stream, group, '{delayed}', 0, id, 'JUSTID')
    elseif #taken < count then
      taken[#taken + 1] = id
    else
      redis.call('HSET', failures, group .. ':' .. id, math.max(failed(id), deliveries(id)))
      has_failures = true
      park(stream, group, delayed, id, now + parked / (1 + #claimed[2]))
      parked = parked + 1
    end
  end
  for i = 1, #taken, 1000 do
    local chunk = {unpack(taken, i, math.min(i + 999, #taken))}
    -- By id: a deleted entry is left out of the reply (Redis 7) or nil (6.2).
    local fields = {}
    for _, entry in ipairs(redis.call('XCLAIM', stream, group, me, 0, unpack(chunk))) do
      if entry and entry[2] then fields[entry[1]] = entry[2] end
    end
    for _, id in ipairs(chunk) do
      if fields[id] then
        out[#out + 1] = {id, fields[id], math.max(1 + failed(id), deliveries(id))}
        count = count - 1
      else
        drop(id)
      end
    end
  end
  for _, id in ipairs(claimed[3] or {}) do redis.call('HDEL', failures, group .. ':' .. id) end
end
if ARGV[8] == '1' and count > 0 then
  local read = redis.call('XREADGROUP', 'GROUP', group, me, 'COUNT', count,
    'STREAMS', stream, '>')
  if read then
    for _, entry in ipairs(read[1][2]) do
      out[#out + 1] = {entry[1], entry[2], 1 + failed(entry[1])}
    end
  end
end
return {out, history, claim_cursor, next_due(delayed, now), has_failures and 1 or 0}
