-- end_discount.lua: customer.discount.deleted, or the replaced discount of
-- customer.discount.updated. A discount first seen ending is recorded as it
-- would have been had its start been seen first (adopted, then ended), so
-- the line does not depend on the order of the events.
-- KEYS (redemptionKeys): 1 code, 2 rd, 3 cust, 4 subs, 5 ledger, 6 disc, 7 inv, 8 held, 9 wait, 10 cwait.
-- ARGV 1-11: discount_args.lua (at: the event's time); 12 reason
-- (discount_deleted | discount_replaced | duration_over).
-- Returns {outcome, record, stripe_active_changed}: finished | unchanged | ask | mark.
-- Runs after ledger_prelude.lua and discount_args.lua.
local before = want()
local r, own, ask = find(d)
if ask then return {'ask', '', 0} end
local reason = ARGV[12]
if not r then
  if not d.marked then return {'mark', '', 0} end
  r = adopt(d)
elseif own then
  -- The adapter's own reservation not yet tied to the discount: Stripe had
  -- the discount, so the line is confirmed and ends (it is not released,
  -- and the apply's late Confirm cannot reopen it).
  confirm(r, d.di, d.sub, d.start)
end
if d.once and (r.cy or 0) >= 1 and reason == 'discount_deleted' then reason = 'duration_over' end
local why, at = r.why, r['end']
local ended = finish(r, reason, d.at, true)
-- A once coupon's discount deleted at the line's end time is remembered
-- (dd: Stripe's time of the deletion), so that a paid invoice seen later
-- makes it the end it was (duration_over, once_over) even when a
-- cancellation at the same time was recorded in between.
local seen = false
if d.once and ARGV[12] == 'discount_deleted' and not r.dd and r.es and d.at == r['end'] then r.dd, seen = d.at, true end
if not ended and why == r.why and at == r['end'] then
  if seen then return {'unchanged', save(r), 0} end
  return {'unchanged', cjson.encode(r), 0}
end
return {'finished', save(r), flip(before)}
