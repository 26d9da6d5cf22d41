-- mark_paid.lua: the customer counts as having paid until ARGV[1] (ms, the
-- paid invoice's paid_at + PaidKeep), unless an earlier mark lasts longer:
-- the latest paid invoice decides, whatever order the events come in.
-- KEYS: the customer's mark (paidKey). ARGV: until ms, now ms.
local want = tonumber(ARGV[1])
if want <= tonumber(ARGV[2]) then return 0 end
if redis.call('PEXPIRETIME', KEYS[1]) >= want then return 0 end
redis.call('SET', KEYS[1], '1', 'PXAT', want)
return 1
