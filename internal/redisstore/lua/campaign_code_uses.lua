-- campaign_code_uses.lua: reads, for validate of one campaign code, what is
-- never taken from the replica's snapshot of the campaign's code record: the
-- customer's redemption of the campaign and the redemption holding the
-- code's text, if any (one round trip; the keys share the campaign's slot).
-- campaign_code_for_customer.lua without the code hash. Read-only.
-- KEYS: rd, cust, used. ARGV: customer, code text.
-- Returns {customer's record or '', its ID or '', holder's record or '', its
-- ID or ''}.
local id = redis.call('HGET', KEYS[2], ARGV[1])
local raw = id and redis.call('HGET', KEYS[1], id)
local hid = redis.call('HGET', KEYS[3], ARGV[2])
local hraw = hid and redis.call('HGET', KEYS[1], hid)
return {raw or '', (raw and id) or '', hraw or '', (hraw and hid) or ''}
