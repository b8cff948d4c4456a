"""The Lua scripts of the mailboxes, and :class:`Script`, which runs one by its SHA1.

Every multi-step change of a mailbox runs as one script, so it is atomic and
costs one round trip. Scripts read the time with ``TIME`` (the server's clock),
so consumers on hosts with skewed clocks agree on leases and due times. Keys
they touch that are not in ``KEYS`` share the mailbox's hash tag (``{name}``),
so a mailbox still lives on one cluster slot.

A list retry waits in ``{name}:delayed`` as the member ``<token>:<payload>`` (the
random token keeps equal payloads apart). A stream retry stays pending in its
group, owned by the pseudo-consumer ``{delayed}`` (braces: no real consumer can
have that name), with its entry id in ``{name}:delayed:<group>``.

Redis does not roll a script back: one that removed a message and then failed to
write it elsewhere would lose it. So every script first checks the types of the
keys it touches (``wrong_type``) and, if one holds another type (a client wrote
it), changes nothing and replies ``WRONGTYPE key '<key>' holds a <type>, not a
<type>``: a failed move leaves the message where it was.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from redis.client import NEVER_DECODE

from transports._exceptions import CommandError

from ._client import DedicatedConnection, Redis

__all__ = ["Script"]

_PRELUDE = """
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
local function park(stream, group, delayed, id, due)
  -- A pending entry goes to the pseudo-consumer {delayed} until ``due`` (ms); false
  -- when it is no longer pending.
  if #redis.call('XCLAIM', stream, group, '{delayed}', 0, id, 'JUSTID') == 0 then
    return false
  end
  redis.call('ZADD', delayed, due, id)
  return true
end
"""


class Script:
    """A Lua script run with EVALSHA, sent in full (EVAL) only when the server lacks it.

    Replies are raw RESP values with bulk strings as ``bytes``.
    """

    __slots__ = ("sha", "source")

    def __init__(self, body: str) -> None:
        self.source = _PRELUDE + body
        self.sha = hashlib.sha1(self.source.encode(), usedforsecurity=False).hexdigest()

    def command(
        self, keys: Sequence[str | bytes], args: Sequence[str | bytes | int | float]
    ) -> tuple[Any, ...]:
        """The ``EVALSHA`` command, to pipeline with others (a ``NOSCRIPT`` error reply
        means the server lacks the script: run it with :meth:`__call__` then)."""
        return (b"EVALSHA", self.sha, len(keys), *keys, *args)

    async def __call__(
        self,
        client: Redis | DedicatedConnection,
        keys: Sequence[str | bytes],
        args: Sequence[str | bytes | int | float],
    ) -> Any:
        """Run the script; EVAL (which caches it) after a NOSCRIPT reply.

        Raises:
            CommandError: the script failed (``.code`` is the error's first word,
                such as ``"NOGROUP"`` or ``"WRONGTYPE"``).
            TransportError: any other failure of the client.
        """
        try:
            return await client.execute_command(
                b"EVALSHA", self.sha, len(keys), *keys, *args, **{NEVER_DECODE: True}
            )
        except CommandError as exc:
            if exc.code != "NOSCRIPT":
                raise
        return await client.execute_command(
            b"EVAL", self.source, len(keys), *keys, *args, **{NEVER_DECODE: True}
        )


LIST_TAKE = Script("""
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
""")
"""Ack the last batch, move due retries back, take over dead consumers, and move up
to ``count`` messages.

The ack's form ``all`` (the consumer acks everything its processing list holds)
costs O(1): no payloads travel. It applies only while the consumer's epoch in
``{name}:epochs`` is the one it registered (at open and at every resync), which
a takeover of its processing list removes, and the list has the expected length;
otherwise the script stops there, and says the ack was refused (0): the consumer
acks payload by payload, then resyncs.
"""

LIST_HEARTBEAT = Script("""
local bad = wrong_type(KEYS[1], 'zset')
if bad then return bad end
redis.call('ZADD', KEYS[1], now_ms(), ARGV[1])
return 1
""")
"""Mark the consumer ``ARGV[1]`` alive now in ``{name}:consumers``."""

LIST_CLOSE = Script("""
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
""")
"""Count the attempts of the messages still held as failed, hand what was never handed
out back to the list, mark the name closed, and drop its epoch; return how many went
back."""

RECORD_FAILURE = Script("""
local bad = wrong_type(KEYS[1], 'hash')
if bad then return bad end
local failures = tonumber(redis.call('HGET', KEYS[1], ARGV[1])) or 0
local attempt = tonumber(ARGV[2])
if failures < attempt then
  failures = attempt
  redis.call('HSET', KEYS[1], ARGV[1], failures)
end
return failures
""")
"""Failures of one message := max(failures, attempt); return it."""

DEAD_LETTER = Script("""
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
""")
"""Append to ``{name}:dead`` (keeping the newest ``dead_maxlen``), ack, and forget the
failure count, atomically; return the dead letter's id, or 0 (and nothing done) when an
at-least-once list consumer no longer holds the message."""

LIST_RETRY = Script("""
-- KEYS: delayed, processing; ARGV: token, delay_ms, payload, '1' if held (at-least-once)
local bad = wrong_type(KEYS[1], 'zset', KEYS[2], 'list')
if bad then return bad end
if redis.call('LREM', KEYS[2], 1, ARGV[3]) == 0 and ARGV[4] == '1' then
  return 0  -- no longer ours: its lease lapsed and another consumer took it over
end
redis.call('ZADD', KEYS[1], now_ms() + tonumber(ARGV[2]), ARGV[1] .. ':' .. ARGV[3])
return 1
""")
"""Ack a list message and schedule it in ``{name}:delayed``; 0 (and nothing done) when
an at-least-once consumer no longer holds it."""

LIST_ACK = Script("""
-- KEYS: processing, failures, epochs; ARGV: me, then the acks (see ack_batch)
local bad = wrong_type(KEYS[1], 'list', KEYS[2], 'hash', KEYS[3], 'hash')
if bad then return bad end
return (ack_batch(KEYS[1], KEYS[2], KEYS[3], ARGV[1], 2))
""")
"""Remove acked messages from the processing list and forget their failure counts:
by count (form ``all``, see LIST_TAKE; 0 when refused) or payload by payload."""

LIST_RELEASE = Script("""
-- KEYS: processing, list; ARGV: payloads, oldest first
local bad = wrong_type(KEYS[1], 'list', KEYS[2], 'list')
if bad then return bad end
local released = 0
for i = #ARGV, 1, -1 do
  if redis.call('LREM', KEYS[1], 1, ARGV[i]) == 1 then
    redis.call('LPUSH', KEYS[2], ARGV[i])
    released = released + 1
  end
end
return released
""")
"""Move held messages back to the head of the list, in order."""

STREAM_RETRY = Script("""
-- KEYS: stream, delayed of the group; ARGV: group, delay_ms, entry ids (in order)
local bad = wrong_type(KEYS[1], 'stream', KEYS[2], 'zset')
if bad then return bad end
local due = now_ms() + tonumber(ARGV[2])
local moved = 0
for i = 3, #ARGV do
  -- A thousandth of a millisecond apart: due together, delivered in order.
  if park(KEYS[1], ARGV[1], KEYS[2], ARGV[i], due + (i - 3) / 1000) then
    moved = moved + 1
  end
end
return moved
""")
"""Hand pending entries to the pseudo-consumer ``{delayed}`` until they fall due."""

STREAM_TAKE = Script("""
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
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, count)) do
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
      park(stream, group, delayed, id, now + parked / 1000)
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
""")
"""Read own history, deliver due retries, claim idle entries, read new ones."""

STREAM_RENEW = Script("""
-- KEYS: stream; ARGV: group, me, entry ids held
local bad = wrong_type(KEYS[1], 'stream')
if bad then return bad end
local owned = {}
for i = 3, #ARGV do
  if redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])[1] then
    owned[#owned + 1] = ARGV[i]
  end
end
for i = 1, #owned, 1000 do
  -- unpack() must come last in an argument list, or Lua passes its first value only.
  local ids = {unpack(owned, i, math.min(i + 999, #owned))}
  ids[#ids + 1] = 'JUSTID'
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, unpack(ids))
end
return #owned
""")
"""Reset the idle time of the held entries this consumer still owns (its lease)."""

REPLAY = Script("""
-- KEYS: dead, mailbox, failures; ARGV: kind, maxlen ('' for none), dead letter ids...
-- A letter is deleted only once its message is stored again: for pub/sub, once
-- PUBLISH reached a subscriber (it keeps nothing for the others).
local bad = wrong_type(KEYS[1], 'stream', KEYS[3], 'hash')
if not bad and ARGV[1] ~= 'pubsub' then bad = wrong_type(KEYS[2], ARGV[1]) end
if bad then return bad end
local replayed, missing, unheard, empty = 0, {}, {}, {}
for i = 3, #ARGV do
  local found = redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i])
  if #found == 1 then
    local fields, payload, entry = found[1][2], nil, {}
    for j = 1, #fields, 2 do
      if fields[j] == 'payload' then payload = fields[j + 1] end
      if string.sub(fields[j], 1, 6) == 'entry:' then  -- a stream entry's own fields
        entry[#entry + 1] = string.sub(fields[j], 7)
        entry[#entry + 1] = fields[j + 1]
      end
    end
    local stored = true
    if not payload then
      stored = false
      empty[#empty + 1] = ARGV[i]
    elseif ARGV[1] == 'list' then
      redis.call('RPUSH', KEYS[2], payload)
      redis.call('HDEL', KEYS[3], redis.sha1hex(payload))
    elseif ARGV[1] == 'stream' then
      if #entry == 0 then entry = {'message', payload} end
      if ARGV[2] == '' then
        redis.call('XADD', KEYS[2], '*', unpack(entry))
      else
        redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(entry))
      end
    elseif redis.call('PUBLISH', KEYS[2], payload) == 0 then
      stored = false
      unheard[#unheard + 1] = ARGV[i]
    end
    if stored then
      replayed = replayed + 1
      redis.call('XDEL', KEYS[1], ARGV[i])
    end
  else
    missing[#missing + 1] = ARGV[i]
  end
end
return {replayed, missing, unheard, empty}
""")
"""Send dead letters back to their mailbox and delete them from ``{name}:dead``; return
how many, and the ids not found, kept as no subscriber received them, kept as empty. A
stream entry kept whole (its ``entry:`` fields) is written back with the same fields."""

STATS = Script("""
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
    local due = redis.call('ZCOUNT', KEYS[3], '-inf', now_ms())
    local lag = tonumber(info['lag'])
    if not lag then lag = redis.call('XLEN', KEYS[1]) end
    return {lag + due, info['pending'] - waiting, dead}
  end
end
return {redis.call('XLEN', KEYS[1]), 0, dead}
""")
"""Depth, pending and dead-letter counts of a mailbox."""

ANNOUNCE = Script("""
-- KEYS: nodes hash, expiry zset
-- ARGV: node, value ('' removes), ttl_ms, instance, then '1' and the instance and
--       seen_at of the record it may replace (or '0', '', '0')
local bad = wrong_type(KEYS[1], 'hash', KEYS[2], 'zset')
if bad then return bad end
local held = redis.call('HGET', KEYS[1], ARGV[1])
if held and (tonumber(redis.call('ZSCORE', KEYS[2], ARGV[1])) or 0) > now_ms() then
  local ok, record = pcall(cjson.decode, held)
  if not (ok and type(record) == 'table') then return held end
  local holder = record['instance']
  if type(holder) ~= 'string' then holder = '' end  -- written before instances
  local replaced = ARGV[5] == '1' and holder == ARGV[6]
    and record['seen_at'] == tonumber(ARGV[7])
  if holder ~= ARGV[4] and not replaced then return held end
end
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('ZADD', KEYS[2], now_ms() + tonumber(ARGV[3]), ARGV[1])
end
return ''
""")
"""Record (or remove) a node's heartbeat, expiring ``ttl`` ms from now, unless another
instance's record of it is live (and not the very record it may replace): then change
nothing and return that record ('' when done)."""

NODES = Script("""
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
""")
"""Prune expired nodes and return the live ones with what they announced."""
