-- ledger_prelude.lua: the functions every ledger script starts with (the
-- scripts of ledgerScript/observedScript in scripts.go): the WantStripeActive
-- predicate, flags, the stock and index moves a redemption makes, and how a
-- Stripe discount finds its ledger line.
-- KEYS (redemptionKeys): 1 code, 2 rd, 3 cust, 4 subs, 5 ledger, 6 disc, 7 inv.
-- ARGV: the including script's.
local function want()
  local h = redis.call('HMGET', KEYS[1], 'status', 'unlimited', 'stock', 'reserved')
  return h[1] == 'active' and (h[2] == '1' or (tonumber(h[3]) or 0) > 0 or (tonumber(h[4]) or 0) > 0)
end
local function flip(before)
  if before ~= want() then return 1 end
  return 0
end
local function addflag(r, f)
  if not r.flags then r.flags = {} end
  for _, x in ipairs(r.flags) do
    if x == f then return end
  end
  table.insert(r.flags, f)
end
-- observed: a ledger script's start: the code must exist, and Stripe's count
-- of the coupon's redemptions (n, from the event) only ever grows.
local function observed(n)
  if redis.call('EXISTS', KEYS[1]) == 0 then return false end
  if n and n > (tonumber(redis.call('HGET', KEYS[1], 'stripe_redeemed')) or 0) then
    redis.call('HSET', KEYS[1], 'stripe_redeemed', n)
  end
  return true
end
-- save stores r without what its place gives (its ID is the hash field,
-- the code ID the key) and returns it whole, for the caller.
local function save(r)
  local id, pc = r.id, r.pc
  r.id, r.pc = nil, nil
  redis.call('HSET', KEYS[2], id, cjson.encode(r))
  r.id, r.pc = id, pc
  return cjson.encode(r)
end
local function load(id)
  local raw = redis.call('HGET', KEYS[2], id)
  if not raw then return nil end
  local r = cjson.decode(raw)
  r.id = id
  return r
end
-- take: r holds a unit of stock from now on, or is flagged when none is left.
local function take(r)
  if r.tk or redis.call('HGET', KEYS[1], 'unlimited') == '1' then return end
  if (tonumber(redis.call('HGET', KEYS[1], 'stock')) or 0) > 0 then
    redis.call('HINCRBY', KEYS[1], 'stock', -1)
    redis.call('HINCRBY', KEYS[1], 'held', 1)
    r.tk = true
  else
    addflag(r, 'stock_exhausted')
  end
end
-- give: r's unit of stock goes back.
local function give(r)
  if not r.tk then return end
  redis.call('HINCRBY', KEYS[1], 'stock', 1)
  redis.call('HINCRBY', KEYS[1], 'held', -1)
  r.tk, r.ret = nil, true
end
-- holdCustomer: r is the customer's use of the code, unless another is.
local function holdCustomer(r)
  local holder = redis.call('HGET', KEYS[3], r.cus)
  if holder and holder ~= r.id then addflag(r, 'customer_already_redeemed') else redis.call('HSET', KEYS[3], r.cus, r.id) end
end
-- finish: end a live redemption; one that never reached active gives its
-- unit back and frees the customer.
local function finish(r, reason, at)
  if r.st == 'reserved' then
    redis.call('HINCRBY', KEYS[1], 'reserved', -1)
    r.st = 'released'
  else
    r.st = 'ended'
  end
  if not r.act then
    give(r)
    if redis.call('HGET', KEYS[3], r.cus) == r.id then redis.call('HDEL', KEYS[3], r.cus) end
  end
  if r.sub and redis.call('HGET', KEYS[4], r.sub) == r.id then redis.call('HDEL', KEYS[4], r.sub) end
  r['end'], r.why, r.lease = at, reason, nil
end
-- confirm: the discount di is on the reservation's subscription sub.
local function confirm(r, di, sub, at)
  if r.st == 'reserved' then
    redis.call('HINCRBY', KEYS[1], 'reserved', -1)
    r.st, r.cf, r.lease = 'pending', at, nil
  end
  r.di = di
  redis.call('HSET', KEYS[6], di, r.id)
  if not r.sub and sub ~= '' then
    r.sub = sub
    redis.call('HSET', KEYS[4], sub, r.id)
  end
end
-- unconfirmed: r is the adapter's own redemption not yet tied to a discount.
local function unconfirmed(r)
  return r and (r.st == 'reserved' or ((r.st == 'pending' or r.st == 'active') and not r.di))
end
-- find: the redemption holding discount di: by its ID; else the adapter's
-- own unconfirmed redemption on sub, or the customer's (a new subscription's
-- reservation has no subscription yet, and a customer holds at most one
-- redemption of the code). Returns the record and whether it was matched
-- that way (and so needs confirming).
local function find(di, sub, cus)
  local id = redis.call('HGET', KEYS[6], di)
  if id then return load(id), false end
  if sub ~= '' then
    id = redis.call('HGET', KEYS[4], sub)
    local r = id and load(id)
    if unconfirmed(r) then return r, true end
  end
  id = redis.call('HGET', KEYS[3], cus)
  local r = id and load(id)
  if unconfirmed(r) and (not r.sub or r.sub == sub) then return r, true end
  return nil, false
end
-- adopt: a discount made outside the adapter becomes a pending ledger line
-- that takes stock; the rules it broke here are flagged (one code per
-- subscription spans codes: the caller checks it and FlagRedemption adds it).
-- d = {id, pc, cus, sub, di, at}
local function adopt(d)
  local r = {id = d.id, pc = d.pc, cus = d.cus, di = d.di, src = 'stripe', st = 'pending', c = d.at, cf = d.at, eff = d.at}
  if d.sub ~= '' then r.sub = d.sub end
  local h = redis.call('HMGET', KEYS[1], 'status', 'expires_ms')
  if h[1] ~= 'active' then addflag(r, 'code_inactive') end
  local exp = tonumber(h[2]) or 0
  if exp > 0 and d.at >= exp then addflag(r, 'code_expired') end
  take(r)
  holdCustomer(r)
  redis.call('ZADD', KEYS[5], 0, r.id)
  if r.sub then redis.call('HSET', KEYS[4], r.sub, r.id) end
  redis.call('HSET', KEYS[6], d.di, r.id)
  return r
end
