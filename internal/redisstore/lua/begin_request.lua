-- begin_request.lua: claims an idempotency record or reads it.
-- KEYS: 1 the record (idemKey: a STRING), 2 the same record in the previous
-- layout (legacyIdemKey: a HASH of state, fp, token, status, ctype, body,
-- enc), read until it expires.
-- ARGV: fingerprint, token, lease ms.
-- The record is "r\n<fingerprint>\n<token>" while its request runs (the
-- lease as TTL), then "d\n<fingerprint>\n<status>\n<encoding>\n<content
-- type>\n<body>" (complete_request.lua).
-- Returns {'proceed'} | {'mismatch'} | {'inflight'} | {'replay', done record}.
local v = redis.call('GET', KEYS[1])
if not v then
  local st = redis.call('HGET', KEYS[2], 'state')
  if st then
    if redis.call('HGET', KEYS[2], 'fp') ~= ARGV[1] then return {'mismatch'} end
    if st == 'running' then return {'inflight'} end
    local r = redis.call('HMGET', KEYS[2], 'status', 'ctype', 'body', 'enc')
    return {'replay', 'd\n' .. ARGV[1] .. '\n' .. (r[1] or '') .. '\n' .. (r[4] or '') .. '\n' .. (r[2] or '') .. '\n' .. (r[3] or '')}
  end
  redis.call('SET', KEYS[1], 'r\n' .. ARGV[1] .. '\n' .. ARGV[2], 'PX', ARGV[3])
  return {'proceed'}
end
local fpEnd = string.find(v, '\n', 3, true)
if not fpEnd or string.sub(v, 3, fpEnd - 1) ~= ARGV[1] then return {'mismatch'} end
if string.sub(v, 1, 1) == 'r' then return {'inflight'} end
return {'replay', v}
