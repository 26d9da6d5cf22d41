-- campaign_candidates.lua: records the texts a generation step is about to
-- claim, before it claims them, so a step interrupted after any claim is
-- finished by the next one (no claimed text is lost).
-- KEYS: 1 campaign hash, 2 candidates, 3 lease. ARGV: owner, batch, texts
-- (concatenated, each the campaign's text length).
-- Returns 1, or 0 when owner lost the lease or the batch is already made.
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end
if tonumber(redis.call('HGET', KEYS[1], 'batch') or '0') ~= tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[2], ARGV[2] .. '|' .. ARGV[3])
return 1
