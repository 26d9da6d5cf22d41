-- begin_request.lua: KEYS record; ARGV fingerprint, token, lease ms.
local st = redis.call('HGET', KEYS[1], 'state')
if not st then
  redis.call('HSET', KEYS[1], 'state', 'running', 'fp', ARGV[1], 'token', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {'proceed'}
end
if redis.call('HGET', KEYS[1], 'fp') ~= ARGV[1] then return {'mismatch'} end
if st == 'running' then return {'inflight'} end
local r = redis.call('HMGET', KEYS[1], 'status', 'ctype', 'body', 'enc')
return {'replay', r[1], r[2], r[3], r[4] or ''}
