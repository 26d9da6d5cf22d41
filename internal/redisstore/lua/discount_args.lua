-- discount_args.lua: the ARGV of the scripts about a Stripe discount, read
-- into d; the code must exist, and Stripe's times_redeemed only grows.
-- ARGV: 1 discount ID, 2 customer, 3 subscription, 4 at (ms), 5 ID for a new
-- ledger line, 6 code ID, 7 Stripe's times_redeemed of the coupon.
local d = {di = ARGV[1], cus = ARGV[2], sub = ARGV[3], at = tonumber(ARGV[4]), id = ARGV[5], pc = ARGV[6]}
if not observed(tonumber(ARGV[7])) then return {'not_found', '', 0, ''} end
