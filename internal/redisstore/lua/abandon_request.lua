-- abandon_request.lua: forgets a running attempt (its token) so a retry
-- proceeds. KEYS: the record (idemKey). ARGV: token.
-- Record formats: begin_request.lua.
local v = redis.call('GET', KEYS[1])
if not v or string.sub(v, 1, 2) ~= 'r\n' then return 0 end
local fpEnd = string.find(v, '\n', 3, true)
if fpEnd and string.sub(v, fpEnd + 1) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
