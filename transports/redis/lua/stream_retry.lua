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
