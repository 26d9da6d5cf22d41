-- reserve.lua: takes a unit of stock for a new redemption.
-- ARGV: record JSON, redemption ID, customer, subscription ("" for a new one), owner, now ms.
-- Returns {outcome, record JSON}: reserved | resumed | already_redeemed |
-- not_found | not_ready | inactive | expired | exhausted.
-- KEYS (redemptionKeys): 1 code, 2 rd, 3 cust, 4 subs, 5 ledger, 6 disc, 7 inv, 8 held, 9 wait, 10 cwait,
-- 11 used.
-- A campaign code (the record's uc: its text; the campaign is the code) is
-- single-use: exhausted while the redemption that took it holds its use
-- (holds_use: live, or a paid invoice carried it), else taken over. A code
-- with many = '1' (a campaign with once_per_customer false) has no customer
-- rule: cust is neither read nor written.
-- Runs after ledger_prelude.lua.
local multi = many()
local r = cjson.decode(ARGV[1])
r.id = ARGV[2]
if multi and r.uc then
  -- Without the customer index (many), the request's own reservation is
  -- found by the code it took (an apply's retry names its ID too), before
  -- the code's state is checked again, as the customer index finds it.
  local holder = redis.call('HGET', KEYS[11], r.uc)
  local e = holder and load(holder)
  if e and holds_use(e) and e.own == ARGV[5] and e.cus == ARGV[3] then return {'resumed', cjson.encode(e)} end
end
local existing = (not multi) and redis.call('HGET', KEYS[3], ARGV[3])
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
if r.uc then
  local holder = redis.call('HGET', KEYS[11], r.uc)
  local o = holder and holder ~= r.id and load(holder)
  if o and holds_use(o) then return {'exhausted', ''} end
  set_holder(r.uc, r.id)
end
take(r)
redis.call('HINCRBY', KEYS[1], 'reserved', 1)
redis.call('ZADD', KEYS[5], 0, r.id)
if not multi then redis.call('HSET', KEYS[3], r.cus, r.id) end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[4], ARGV[4], r.id) end
return {'reserved', save(r)}
