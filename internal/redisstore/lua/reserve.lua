-- reserve.lua: takes a unit of stock for a new redemption.
-- ARGV: record JSON, redemption ID, customer, subscription ("" for a new one), owner, now ms.
-- Returns {outcome, record JSON}: reserved | resumed | already_redeemed |
-- not_found | not_ready | inactive | expired | exhausted.
-- KEYS (redemptionKeys): 1 code, 2 rd, 3 cust, 4 subs, 5 ledger, 6 disc, 7 inv, 8 held, 9 wait, 10 cwait.
-- Runs after ledger_prelude.lua.
local existing = redis.call('HGET', KEYS[3], ARGV[3])
if existing then
  local e = load(existing)
  if e then
    if e.own == ARGV[5] then return {'resumed', cjson.encode(e)} end
    return {'already_redeemed', cjson.encode(e)}
  end
  redis.call('HDEL', KEYS[3], ARGV[3])
end
local h = redis.call('HMGET', KEYS[1], 'status', 'state', 'unlimited', 'expires_ms', 'stock')
if not h[1] then return {'not_found', ''} end
if h[2] ~= 'ready' then return {'not_ready', ''} end
if h[1] ~= 'active' then return {'inactive', ''} end
local exp = tonumber(h[4]) or 0
if exp > 0 and tonumber(ARGV[6]) >= exp then return {'expired', ''} end
if h[3] ~= '1' and (tonumber(h[5]) or 0) <= 0 then return {'exhausted', ''} end
local r = cjson.decode(ARGV[1])
r.id = ARGV[2]
take(r)
redis.call('HINCRBY', KEYS[1], 'reserved', 1)
redis.call('ZADD', KEYS[5], 0, r.id)
redis.call('HSET', KEYS[3], r.cus, r.id)
if ARGV[4] ~= '' then redis.call('HSET', KEYS[4], ARGV[4], r.id) end
return {'reserved', save(r)}
