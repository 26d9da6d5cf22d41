-- index_code.lua: puts a ready code in the list matching its status. It is
-- idempotent, so a retry after a crash between the record write and this
-- script heals the index. The code's text is freed by index_text.lua.
-- KEYS: list:active, list:inactive, list:archived. ARGV: id, status.
local id, status = ARGV[1], ARGV[2]
local lists = {active = KEYS[1], inactive = KEYS[2], archived = KEYS[3]}
for s, key in pairs(lists) do
  if s == status then redis.call('ZADD', key, 0, id) else redis.call('ZREM', key, id) end
end
return 1
