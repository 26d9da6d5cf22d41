-- index_code.lua: puts a ready code in the lists matching its status and, for an
-- archived code, frees its text. It is idempotent, so a retry after a crash
-- between the record write and this script heals the index.
-- KEYS: codes, prov, list:active, list:inactive, list:archived.
-- ARGV: id, code, status.
local id, code, status = ARGV[1], ARGV[2], ARGV[3]
local prov = redis.call('HGET', KEYS[2], code)
if prov and cjson.decode(prov).id == id then redis.call('HDEL', KEYS[2], code) end
local lists = {active = KEYS[3], inactive = KEYS[4], archived = KEYS[5]}
for s, key in pairs(lists) do
  if s == status then redis.call('ZADD', key, 0, id) else redis.call('ZREM', key, id) end
end
if status == 'archived' and redis.call('HGET', KEYS[1], code) == id then redis.call('HDEL', KEYS[1], code) end
return 1
