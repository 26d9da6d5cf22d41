-- index_text.lua: a ready code's text: its create is finished (the
-- provisional entry goes) and, once archived, the text is free for a new
-- code. Idempotent.
-- KEYS: the text's key (codeTextKey). ARGV: id, status.
local id, status = ARGV[1], ARGV[2]
local prov = redis.call('HGET', KEYS[1], 'prov')
if prov and cjson.decode(prov).id == id then redis.call('HDEL', KEYS[1], 'prov') end
if status == 'archived' and redis.call('HGET', KEYS[1], 'id') == id then redis.call('HDEL', KEYS[1], 'id') end
return 1
