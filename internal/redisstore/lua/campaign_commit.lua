-- campaign_commit.lua: ends a generation step: the batch's claimed texts
-- become chunk <batch> of the campaign's codes and the progress cursor
-- moves on, at most once per batch.
-- KEYS: 1 campaign hash, 2 candidates, 3 lease, 4 the chunk (campaignChunkKey
-- of batch). ARGV: owner, batch, texts (concatenated), how many.
-- Returns the campaign's generated count, or -1 when owner lost the lease.
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return -1 end
local batch = tonumber(redis.call('HGET', KEYS[1], 'batch') or '0')
if batch == tonumber(ARGV[2]) then
  redis.call('SET', KEYS[4], ARGV[3])
  redis.call('HSET', KEYS[1], 'batch', batch + 1)
  local generated = redis.call('HINCRBY', KEYS[1], 'generated', tonumber(ARGV[4]))
  if generated >= tonumber(redis.call('HGET', KEYS[1], 'count')) then
    redis.call('HSET', KEYS[1], 'state', 'ready')
  end
  redis.call('DEL', KEYS[2])
end
return tonumber(redis.call('HGET', KEYS[1], 'generated'))
