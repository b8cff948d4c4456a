local bad = wrong_type(KEYS[1], 'hash')
if bad then return bad end
return raise_failures(KEYS[1], ARGV[1], tonumber(ARGV[2]))
