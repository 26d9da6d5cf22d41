-- customer_redemption.lua: returns the customer's redemption record of a code.
-- ARGV: customer.
-- KEYS (redemptionKeys): 1 code, 2 rd, 3 cust, 4 subs, 5 ledger, 6 disc, 7 inv, 8 held, 9 wait, 10 cwait.
-- Runs after ledger_prelude.lua.
local id = redis.call('HGET', KEYS[3], ARGV[1])
local r = id and load(id)
if not r then return false end
return cjson.encode(r)
