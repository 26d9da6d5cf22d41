-- clear_claim.lua: deletes a subscription's claim if it names the redemption.
-- KEYS: claims. ARGV: subscription, redemption ID.
-- A claim is "promo code ID|redemption ID".
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
local bar = string.find(v, '|', 1, true)
if bar and string.sub(v, bar + 1) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
