-- campaign_pcode_observed.lua: records a mirrored code's promotion code's
-- active flag as Stripe reported it (promotion_code.updated, read back from
-- Stripe), unless the adapter switched the code since that read (its switch
-- count moved): the adapter's own record is then newer.
-- KEYS: 1 pstate (text -> "<1|0>:<switches>"). ARGV: text, active ('1'|'0'),
-- switches seen before the read.
-- Returns 1 when recorded, 0 when left.
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local n = 0
if cur then n = tonumber(string.match(cur, ':(%d+)$')) or 0 end
if n ~= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. n)
return 1
