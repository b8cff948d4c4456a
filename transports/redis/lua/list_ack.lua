-- KEYS: processing, failures, epochs; ARGV: me, then the acks (see ack_batch)
local bad = wrong_type(KEYS[1], 'list', KEYS[2], 'hash', KEYS[3], 'hash')
if bad then return bad end
return (ack_batch(KEYS[1], KEYS[2], KEYS[3], ARGV[1], 2))
