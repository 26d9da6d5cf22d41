-- observe_discount.lua: customer.discount.created (or the new discount of
-- customer.discount.updated): confirms the adapter's own reservation, or
-- adopts a discount made outside the adapter as a new ledger line.
-- KEYS (redemptionKeys): 1 code, 2 rd, 3 cust, 4 subs, 5 ledger, 6 disc, 7 inv, 8 held, 9 wait, 10 cwait.
-- ARGV 1-11: discount_args.lua.
-- Returns {outcome, record, stripe_active_changed, how}: known | confirmed |
-- adopted | ask (read the subscription's promo_redemption_id and run again)
-- | mark (add the customer's marker and run again).
-- Runs after ledger_prelude.lua and discount_args.lua.
local before = want()
local r, own, ask = find(d)
if ask then return {'ask', '', 0, ''} end
if r and not own then return {'known', cjson.encode(r), 0, 'known'} end
if r then
  confirm(r, d.di, d.sub, d.start)
  return {'confirmed', save(r), flip(before), 'confirmed'}
end
if not d.marked then return {'mark', '', 0, ''} end
r = adopt(d)
return {'adopted', save(r), flip(before), 'adopted'}
