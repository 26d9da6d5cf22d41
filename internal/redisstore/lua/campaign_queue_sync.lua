-- campaign_queue_sync.lua: queues mirrored codes for their Stripe promotion
-- code's active flag to be checked: one code (if it is mirrored), a code
-- given back (if it is mirrored and the campaign is active), or every
-- mirrored code of the campaign with a new switch generation (a status
-- change), in batches of HSCAN. Each queuing scores the code with a new
-- number of the campaign's (psync_seq), so the worker dequeues a code only
-- if it was not queued again while it was being switched
-- (campaign_code_synced.lua).
-- KEYS: 1 campaign hash, 2 ptext (text -> promotion code ID), 3 psync queue.
-- ARGV: text, mode: 'one' | 'free' | 'all'.
-- Returns how many codes were queued.
local mode = ARGV[2]
if mode ~= 'all' then
  if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return 0 end
  if mode == 'free' and redis.call('HGET', KEYS[1], 'status') ~= 'active' then return 0 end
  redis.call('ZADD', KEYS[3], redis.call('HINCRBY', KEYS[1], 'psync_seq', 1), ARGV[1])
  return 1
end
redis.call('HINCRBY', KEYS[1], 'psync_gen', 1)
local seq = redis.call('HINCRBY', KEYS[1], 'psync_seq', 1)
local n, cursor = 0, '0'
repeat
  local res = redis.call('HSCAN', KEYS[2], cursor, 'COUNT', 1000)
  cursor = res[1]
  for i = 1, #res[2], 2 do
    redis.call('ZADD', KEYS[3], seq, res[2][i])
    n = n + 1
  end
until cursor == '0'
return n
