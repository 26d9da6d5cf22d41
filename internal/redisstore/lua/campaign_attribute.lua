-- campaign_attribute.lua: a ledger line of a campaign whose discount came
-- from one of its codes' Stripe promotion codes (Stripe Checkout) names that
-- code and, if it needs it (holds_use), takes the code's single use as the
-- prelude's holdCode gives it: the line with the lower ID keeps the code
-- (IDs follow the discounts' starts), unless the holder is an apply still in
-- flight (it keeps what it took); the other is flagged code_already_used and
-- waits, whichever event came first. Idempotent.
-- KEYS (redemptionKeys): 1 code, 2 rd, 3 cust, 4 subs, 5 ledger, 6 disc, 7 inv,
-- 8 held, 9 wait, 10 cwait, 11 used; 12 pcodes (promotion code ID -> text).
-- ARGV: redemption ID, promotion code ID.
-- Returns {outcome, record JSON or ''}: none | known | attributed.
-- Runs after ledger_prelude.lua.
local text = redis.call('HGET', KEYS[12], ARGV[2])
local r = load(ARGV[1])
if not text or not r then return {'none', ''} end
if r.uc then return {'known', cjson.encode(r)} end
r.uc = text
if holds_use(r) then holdCode(r) end
return {'attributed', save(r)}
