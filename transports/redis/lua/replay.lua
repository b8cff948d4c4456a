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
