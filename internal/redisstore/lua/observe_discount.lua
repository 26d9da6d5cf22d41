-- observe_discount.lua: customer.discount.created. Returns {outcome, record, flip}.
-- KEYS (redemptionKeys): 1 code, 2 rd, 3 cust, 4 subs, 5 ledger, 6 disc, 7 inv.
-- ARGV 1-7 (discount_args.lua): discount, customer, subscription, at ms, new ID, code ID, Stripe times_redeemed.
-- Runs after ledger_prelude.lua and discount_args.lua.
local before = want()
local r, ownPending = find(d.di, d.sub, d.cus)
if r and not ownPending then return {'known', cjson.encode(r), 0, 'known'} end
if r then
  confirm(r, d.di, d.sub, d.at)
  return {'confirmed', save(r), flip(before), 'confirmed'}
end
r = adopt(d)
return {'adopted', save(r), flip(before), 'adopted'}
