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
