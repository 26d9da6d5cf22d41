-- end_discount.lua: customer.discount.deleted (or replaced). ARGV after the
-- observed ones: reason, once ('1' when the coupon lasts one invoice).
-- KEYS (redemptionKeys): 1 code, 2 rd, 3 cust, 4 subs, 5 ledger, 6 disc, 7 inv.
-- ARGV 1-7 (discount_args.lua): discount, customer, subscription, at ms, new ID, code ID, Stripe times_redeemed.
-- Runs after ledger_prelude.lua and discount_args.lua.
local before = want()
local r, own = find(d.di, d.sub, d.cus)
if not r then
  r = {id = d.id, pc = d.pc, cus = d.cus, di = d.di, src = 'stripe', st = 'ended', c = d.at, why = ARGV[8]}
  r['end'] = d.at
  if d.sub ~= '' then r.sub = d.sub end
  redis.call('ZADD', KEYS[5], 0, r.id)
  redis.call('HSET', KEYS[6], d.di, r.id)
  return {'tombstone', save(r), 0}
end
if r.st == 'ended' or r.st == 'released' then return {'unchanged', cjson.encode(r), 0} end
local reason = ARGV[8]
if ARGV[9] == '1' and (r.cy or 0) >= 1 then reason = 'duration_over' end
-- The adapter's own reservation not yet tied to the discount: Stripe had the
-- discount, so the line is confirmed and ends (it is not released, and the
-- apply's late Confirm cannot reopen it).
if own then confirm(r, d.di, d.sub, d.at) end
finish(r, reason, d.at)
return {'finished', save(r), flip(before)}
