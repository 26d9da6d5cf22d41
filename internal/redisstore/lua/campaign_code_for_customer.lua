-- campaign_code_for_customer.lua: reads what validate, subscribe and apply
-- decide on for one campaign code, in one round trip (the keys share the
-- campaign's slot): the campaign's code hash, the customer's redemption of
-- the campaign, and the redemption holding the code's text, if any.
-- KEYS: code, rd, cust, used. ARGV: customer, code text.
-- Returns {HGETALL as a flat list, customer's record or '', its ID or '',
-- holder's record or '', its ID or ''}.
local h = redis.call('HGETALL', KEYS[1])
local id = redis.call('HGET', KEYS[3], ARGV[1])
local raw = id and redis.call('HGET', KEYS[2], id)
local hid = redis.call('HGET', KEYS[4], ARGV[2])
local hraw = hid and redis.call('HGET', KEYS[2], hid)
return {h, raw or '', (raw and id) or '', hraw or '', (hraw and hid) or ''}
