local function wrong_type(...)
  -- Key, type pairs: an error reply naming the first key that exists with another
  -- type, else nil. Called before any change (see the module docstring).
  local expected = {...}
  for i = 1, #expected, 2 do
    local found = redis.call('TYPE', expected[i]).ok
    if found ~= 'none' and found ~= expected[i + 1] then
      return redis.error_reply("WRONGTYPE key '" .. expected[i] .. "' holds a " .. found
        .. ', not a ' .. expected[i + 1])
    end
  end
  return nil
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function chunked(command, key, items)
  for i = 1, #items, 1000 do
    redis.call(command, key, unpack(items, i, math.min(i + 999, #items)))
  end
end
local function ack_each(processing, first, last)
  -- ARGV[first..last]: payloads to ack. Acks come mostly in fetch order: the
  -- oldest held messages are the head.
  if last < first then return end
  local head = redis.call('LRANGE', processing, 0, last - first)
  local i = first
  while i <= last and head[i - first + 1] == ARGV[i] do i = i + 1 end
  if i > first then redis.call('LTRIM', processing, i - first, -1) end
  for j = i, last do redis.call('LREM', processing, 1, ARGV[j]) end
end
local function ack_batch(processing, failures, epochs, me, at)
  -- ARGV[at..]: epoch, form ('' nothing, 'all', 'each'), the ack's id, nf, na, nf
  -- failure fields, then (form 'each') na payloads. Form 'all' acks everything the
  -- consumer holds by count: only while its epoch is the one it registered (a
  -- takeover drops it) and the list has the expected length. An ack whose id was
  -- made already (a retry after a lost reply) is skipped: made again, payload by
  -- payload, it would ack equal copies taken since. Returns 1 (acked), 0 (refused)
  -- or -1 (nothing to ack), and the index of the first ARGV after its arguments.
  local epoch, form, id = ARGV[at], ARGV[at + 1], ARGV[at + 2]
  local nf, na = tonumber(ARGV[at + 3]), tonumber(ARGV[at + 4])
  local fields = at + 5
  local after = fields + nf
  if form == 'each' then after = after + na end
  if form == '' then return -1, after end
  local made = me .. ' ack'
  if redis.call('HGET', epochs, made) == id then return 1, after end
  if form == 'all' then
    if redis.call('HGET', epochs, me) ~= epoch or redis.call('LLEN', processing) ~= na then
      return 0, after
    end
    redis.call('DEL', processing)
  else
    ack_each(processing, fields + nf, after - 1)
  end
  redis.call('HSET', epochs, made, id)
  local last = fields + nf - 1
  for i = fields, last, 1000 do
    redis.call('HDEL', failures, unpack(ARGV, i, math.min(i + 999, last)))
  end
  return 1, after
end
local function next_due(delayed, now)
  local first = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
  if #first == 0 then return -1 end
  return math.max(0, tonumber(first[2]) - now)
end
local function due_by(now)
  -- The upper bound (exclusive) of the scores due at ``now`` (ms): scores carry
  -- fractions of a millisecond that order entries parked together (stream_retry), and
  -- an entry is due within its millisecond, so that those parked together fall due
  -- together, in order, and none is left behind for entries sent since.
  return '(' .. (now + 1)
end
local function park(stream, group, delayed, id, due)
  -- A pending entry goes to the pseudo-consumer {delayed} until ``due`` (ms); false
  -- when it is no longer pending.
  if #redis.call('XCLAIM', stream, group, '{delayed}', 0, id, 'JUSTID') == 0 then
    return false
  end
  redis.call('ZADD', delayed, due, id)
  return true
end
local function raise_failures(failures, field, attempt)
  -- A failed attempt: the failure count of ``field`` becomes ``attempt`` if below
  -- (so that counting one delivery twice counts once); returns the count.
  local count = tonumber(redis.call('HGET', failures, field)) or 0
  if count < attempt then
    count = attempt
    redis.call('HSET', failures, field, count)
  end
  return count
end
