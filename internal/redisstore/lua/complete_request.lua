-- complete_request.lua: KEYS record; ARGV token, status, content type, body,
-- ttl ms, body encoding ('' = as is, 'z' = DEFLATE). The attempt's token is
-- dropped once done: only a running attempt needs it.
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
redis.call('HDEL', KEYS[1], 'token')
redis.call('HSET', KEYS[1], 'state', 'done', 'status', ARGV[2], 'ctype', ARGV[3], 'body', ARGV[4])
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'enc', ARGV[6]) end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
