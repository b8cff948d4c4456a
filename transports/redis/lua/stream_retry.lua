-- KEYS: stream, delayed of the group; ARGV: group, delay_ms, entry ids (in order)
local bad = wrong_type(KEYS[1], 'stream', KEYS[2], 'zset')
if bad then return bad end
local due = now_ms() + tonumber(ARGV[2])
local moved = 0
local step = 1 / (#ARGV - 1)  -- ids at ARGV[3..]: all within one millisecond
for i = 3, #ARGV do
  -- Fractions of one millisecond apart: due together (see due_by), delivered in order
  -- (a score holds about 4,000 distinct steps within a millisecond; beyond, ties go
  -- by id).
  if park(KEYS[1], ARGV[1], KEYS[2], ARGV[i], due + (i - 3) * step) then
    moved = moved + 1
  end
end
return moved
