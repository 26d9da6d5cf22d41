-- code_for_customer.lua: reads a code's hash and the customer's redemption of
-- it together (one round trip; the keys share the code's slot).
-- KEYS: code, rd, cust. ARGV: customer. Returns {HGETALL as a flat list,
-- the redemption record or ”}.
local h = redis.call('HGETALL', KEYS[1])
local id = redis.call('HGET', KEYS[3], ARGV[1])
local raw = id and redis.call('HGET', KEYS[2], id)
if not raw then return {h, '', ''} end
return {h, raw, id}
