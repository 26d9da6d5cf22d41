-- begin_create.lua: claims a code text or takes over an unfinished create.
-- KEYS: the text's key (codeTextKey). ARGV: code, new id, owner, now ms,
-- lease ms, terms hash.
-- Fields of the text's key: id (the code holding the text), prov (JSON
-- {id, owner, lease, terms} while its create is unfinished).
-- Returns {outcome, id} with outcome new | resume | busy | taken.
local id = redis.call('HGET', KEYS[1], 'id')
local now, lease = tonumber(ARGV[4]), tonumber(ARGV[5])
if not id then
  redis.call('HSET', KEYS[1], 'id', ARGV[2], 'prov',
    cjson.encode({id = ARGV[2], owner = ARGV[3], lease = tostring(now + lease), terms = ARGV[6]}))
  return {'new', ARGV[2]}
end
local raw = redis.call('HGET', KEYS[1], 'prov')
if not raw then return {'taken', id} end
local p = cjson.decode(raw)
if p.terms ~= ARGV[6] then return {'taken', id} end
if p.owner ~= ARGV[3] and tonumber(p.lease) > now then return {'busy', id} end
p.owner = ARGV[3]
p.lease = tostring(now + lease)
redis.call('HSET', KEYS[1], 'prov', cjson.encode(p))
return {'resume', id}
