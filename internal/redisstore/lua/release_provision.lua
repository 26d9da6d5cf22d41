-- release_provision.lua: ends an owner's provisioning lease.
-- KEYS: the text's key (codeTextKey). ARGV: code, owner.
local raw = redis.call('HGET', KEYS[1], 'prov')
if not raw then return 0 end
local p = cjson.decode(raw)
if p.owner ~= ARGV[2] then return 0 end
p.lease = '0'
redis.call('HSET', KEYS[1], 'prov', cjson.encode(p))
return 1
