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
