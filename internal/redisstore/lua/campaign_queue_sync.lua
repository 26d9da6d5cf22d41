-- campaign_queue_sync.lua: queues mirrored codes for their Stripe promotion
-- code's active flag to be checked: one code (if it is mirrored), or every
-- mirrored code of the campaign with a new switch generation (a status
-- change), in batches of HSCAN.
-- KEYS: 1 campaign hash, 2 ptext (text -> promotion code ID), 3 psync queue.
-- ARGV: text, '1' for every mirrored code.
-- Returns how many codes were queued.
if ARGV[2] ~= '1' then
  if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return 0 end
  redis.call('ZADD', KEYS[3], 0, ARGV[1])
  return 1
end
redis.call('HINCRBY', KEYS[1], 'psync_gen', 1)
local n, cursor = 0, '0'
repeat
  local res = redis.call('HSCAN', KEYS[2], cursor, 'COUNT', 1000)
  cursor = res[1]
  for i = 1, #res[2], 2 do
    redis.call('ZADD', KEYS[3], 0, res[2][i])
    n = n + 1
  end
until cursor == '0'
return n
