-- campaign_code_synced.lua: the worker checked a queued code's promotion
-- code. When it switched it in Stripe, the code's known flag and its switch
-- count (pstate: text -> "<1|0>:<switches>") are recorded; the count makes
-- the next switch's Stripe idempotency key a new one. The code leaves the
-- queue only if it was not queued again meanwhile (its score unchanged).
-- KEYS: 1 psync queue, 2 pstate. ARGV: text, score seen, switched ('1'|'0'),
-- active ('1'|'0'), switches seen.
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[4] .. ':' .. (tonumber(ARGV[5]) + 1))
end
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
end
return 1
