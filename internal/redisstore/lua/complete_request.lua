-- complete_request.lua: stores a request's answer if its attempt (token)
-- still holds the record; the attempt's token goes (only a running attempt
-- needs it).
-- KEYS: the record (idemKey). ARGV: token, status, content type, body, ttl
-- ms, body encoding ('' = as is, 'z' = DEFLATE).
-- Record formats: begin_request.lua.
local v = redis.call('GET', KEYS[1])
if not v or string.sub(v, 1, 2) ~= 'r\n' then return 0 end
local fpEnd = string.find(v, '\n', 3, true)
if not fpEnd or string.sub(v, fpEnd + 1) ~= ARGV[1] then return 0 end
local fp = string.sub(v, 3, fpEnd - 1)
redis.call('SET', KEYS[1], 'd\n' .. fp .. '\n' .. ARGV[2] .. '\n' .. ARGV[6] .. '\n' .. ARGV[3] .. '\n' .. ARGV[4],
  'PX', ARGV[5])
return 1
