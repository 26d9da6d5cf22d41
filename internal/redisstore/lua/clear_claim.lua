-- clear_claim.lua: deletes a subscription's claim if it names the redemption.
-- KEYS: the subscription's claim (claimKey). ARGV: redemption ID.
-- A claim is "promo code ID|redemption ID".
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local bar = string.find(v, '|', 1, true)
if bar and string.sub(v, bar + 1) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
