-- begin_event.lua: claims an event. KEYS: event. ARGV: token, lease ms.
-- The value is "p:<token>" while processing (with the lease as TTL) and "d"
-- once done (kept 7 days).
local v = redis.call('GET', KEYS[1])
if v == 'd' then return 'done' end
if v then return 'inflight' end
redis.call('SET', KEYS[1], 'p:' .. ARGV[1], 'PX', ARGV[2])
return 'new'
