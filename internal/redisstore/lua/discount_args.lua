-- discount_args.lua: the ARGV of the scripts about a Stripe discount, read
-- into d; the code must exist, and Stripe's times_redeemed only grows.
-- ARGV: 1 discount ID, 2 customer, 3 subscription, 4 at (ms: the event's
-- Stripe time; for a paid invoice its status_transitions.paid_at), 5 ID for
-- a new ledger line, 6 code ID, 7 Stripe's times_redeemed of the coupon,
-- 8 the discount's start (ms; 0 = unknown), 9 '1' when the coupon lasts one
-- invoice (duration once), 10 the subscription's promo_redemption_id
-- metadata: '' not known yet, '-' it has none, '*' match by customer alone,
-- 11 '1' when the customer's marker (ba:{cus}:codes, in the customer's slot)
-- holds the code: a line made outside the adapter is adopted only then, else
-- the script answers {'mark', ...} and the store adds the marker and runs it
-- again. The including script's own ARGV start at 12.
local d = {di = ARGV[1], cus = ARGV[2], sub = ARGV[3], at = tonumber(ARGV[4]), id = ARGV[5], pc = ARGV[6],
  once = ARGV[9] == '1', srd = ARGV[10], marked = ARGV[11] == '1'}
d.start = tonumber(ARGV[8]) or 0
if d.start == 0 then d.start = d.at end
if not observed(tonumber(ARGV[7])) then return {'not_found', '', 0, ''} end
