-- clear_claim.lua: deletes a subscription's claim if it names the redemption.
-- KEYS: claims. ARGV: subscription, redemption ID.
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
local first = string.find(v, '|', 1, true)
if not first then return 0 end
local second = string.find(v, '|', first + 1, true)
if string.sub(v, first + 1, (second or 0) - 1) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
