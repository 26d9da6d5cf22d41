-- campaign_mirrored.lua: a campaign code's Stripe promotion code exists:
-- recorded both ways with the active flag it was made with (pstate: text ->
-- "<1|0>:<switches>"), the code dequeued and the campaign's mirrored count
-- grown, once.
-- KEYS: 1 campaign hash, 2 ptext (text -> promotion code ID), 3 pcodes
-- (promotion code ID -> text), 4 mirror queue, 5 pstate. ARGV: text,
-- promotion code ID, active ('1'|'0').
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 1 then
  redis.call('HINCRBY', KEYS[1], 'mirrored', 1)
  redis.call('HSETNX', KEYS[5], ARGV[1], ARGV[3] .. ':0')
end
redis.call('HSET', KEYS[3], ARGV[2], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
return 1
