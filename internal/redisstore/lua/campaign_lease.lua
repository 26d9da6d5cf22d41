-- campaign_lease.lua: takes or renews a campaign generation lease.
-- KEYS: the campaign's lease key (campaignLeaseKey). ARGV: owner, ttl ms.
-- Returns 1 when owner holds the lease now, 0 when another owner does.
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
