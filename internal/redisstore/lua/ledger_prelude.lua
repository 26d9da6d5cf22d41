-- ledger_prelude.lua: the functions every ledger script starts with (the
-- scripts of ledgerScript/observedScript in scripts.go): the WantStripeActive
-- predicate, flags, the stock and index moves a redemption makes, and how a
-- Stripe discount finds its ledger line.
-- KEYS (redemptionKeys): 1 code, 2 rd, 3 cust, 4 subs, 5 ledger, 6 disc, 7 inv,
-- 8 held, 9 wait, 10 cwait, 11 used (a campaign's: code text -> the line
-- that took it, and "w|" .. text -> the lines waiting for it).
-- ARGV: the including script's.
local function want()
  local h = redis.call('HMGET', KEYS[1], 'status', 'unlimited', 'stock', 'reserved')
  return h[1] == 'active' and (h[2] == '1' or (tonumber(h[3]) or 0) > 0 or (tonumber(h[4]) or 0) > 0)
end
local function flip(before)
  if before ~= want() then return 1 end
  return 0
end
-- addflag: flags are a sorted set, whatever order they were added in.
local function addflag(r, f)
  if not r.flags then r.flags = {} end
  for _, x in ipairs(r.flags) do
    if x == f then return end
  end
  table.insert(r.flags, f)
  table.sort(r.flags)
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
-- holds_use: r holds a unit of the code's stock and its customer's one use
-- of the code: while live (reserved, pending, active), and for good once a
-- paid invoice carried it. promo.Redemption.HoldsUse is the same rule for
-- the rebuild from Stripe (TestHoldsUseAgrees checks the two agree).
local function holds_use(r)
  return r.st == 'reserved' or r.st == 'pending' or r.st == 'active' or r.act ~= nil
end
-- count_code: a campaign's count of redeemed codes (the code hash's
-- redeemed: texts whose line in used, KEYS[11], holds_use) follows r, about
-- to be saved, when r is the line holding its code's text: +1 when r starts
-- holding its use, -1 when it stops. A campaign made before the counter has
-- no field yet; campaign_redeemed.lua counts it once.
local function count_code(id, r)
  if redis.call('HGET', KEYS[11], r.uc) ~= id then return end
  if redis.call('HEXISTS', KEYS[1], 'redeemed') == 0 then return end
  local raw = redis.call('HGET', KEYS[2], id)
  local was = raw and holds_use(cjson.decode(raw)) or false
  local now = holds_use(r)
  if was ~= now then redis.call('HINCRBY', KEYS[1], 'redeemed', now and 1 or -1) end
end
-- save stores r without what its place gives (its ID is the hash field,
-- the code ID the key) and returns it whole, for the caller.
local function save(r)
  local id, pc = r.id, r.pc
  r.id, r.pc = nil, nil
  if r.uc then count_code(id, r) end
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
-- set_holder: code text's single use goes to line id (used, KEYS[11]).
-- A campaign's redeemed count follows whether the text's holder holds_use,
-- as stored: here for the change of holder, and in count_code (save) for
-- the holder's own change.
local function set_holder(text, id)
  local function held(hid)
    local raw = hid and redis.call('HGET', KEYS[2], hid)
    return raw and holds_use(cjson.decode(raw)) or false
  end
  local before = held(redis.call('HGET', KEYS[11], text))
  redis.call('HSET', KEYS[11], text, id)
  local after = held(id)
  if before ~= after and redis.call('HEXISTS', KEYS[1], 'redeemed') == 1 then
    redis.call('HINCRBY', KEYS[1], 'redeemed', after and 1 or -1)
  end
end
local function dropflag(r, f)
  if not r.flags then return end
  for i, x in ipairs(r.flags) do
    if x == f then table.remove(r.flags, i) break end
  end
  if #r.flags == 0 then r.flags = nil end
end
-- Units of stock and the customer's one use go to the lines that need them
-- (holds_use) in ID order, whatever order the events come in: the order
-- of the rebuild from Stripe (promo.countLedger). held (KEYS[8]) lists the
-- lines holding a unit, wait (KEYS[9]) those that need one and have none
-- (flagged stock_exhausted), cwait (KEYS[10]) "customer|ID" of those that
-- need the customer's use another line holds (flagged
-- customer_already_redeemed). A line still reserved (an apply in flight)
-- keeps what it took.
local function unlimited() return redis.call('HGET', KEYS[1], 'unlimited') == '1' end
local function gets_unit(r)
  r.tk = true
  redis.call('ZADD', KEYS[8], 0, r.id)
  redis.call('ZREM', KEYS[9], r.id)
  dropflag(r, 'stock_exhausted')
end
local function waits_unit(r)
  r.tk = nil
  redis.call('ZREM', KEYS[8], r.id)
  redis.call('ZADD', KEYS[9], 0, r.id)
  addflag(r, 'stock_exhausted')
end
-- take: r needs a unit: from the stock; else from the last line holding
-- one when r comes before it (that line waits); else r waits.
local function take(r)
  if r.tk or unlimited() then return end
  if (tonumber(redis.call('HGET', KEYS[1], 'stock')) or 0) > 0 then
    redis.call('HINCRBY', KEYS[1], 'stock', -1)
    redis.call('HINCRBY', KEYS[1], 'held', 1)
    gets_unit(r)
    return
  end
  local last = redis.call('ZREVRANGEBYLEX', KEYS[8], '+', '-', 'LIMIT', 0, 1)[1]
  local o = last and last > r.id and load(last)
  if o and o.st ~= 'reserved' then
    waits_unit(o)
    save(o)
    gets_unit(r)
    return
  end
  waits_unit(r)
end
-- give: r no longer needs a unit (it ended before a paid invoice): its unit
-- goes to the first waiting line, or back to the stock.
local function give(r)
  redis.call('ZREM', KEYS[9], r.id)
  dropflag(r, 'stock_exhausted')
  if not r.tk then return end
  r.tk = nil
  redis.call('ZREM', KEYS[8], r.id)
  local first = redis.call('ZRANGEBYLEX', KEYS[9], '-', '+', 'LIMIT', 0, 1)[1]
  local w = first and load(first)
  if w then
    gets_unit(w)
    save(w)
    return
  end
  if first then redis.call('ZREM', KEYS[9], first) end
  redis.call('HINCRBY', KEYS[1], 'stock', 1)
  redis.call('HINCRBY', KEYS[1], 'held', -1)
end
-- many: the code does not limit a customer to one use (a campaign with
-- once_per_customer false: hash field many = '1'): no line holds or waits
-- for a customer's use and cust (KEYS[3]) is not written. A term of the
-- code: read once per script run.
local many_cached
local function many()
  if many_cached == nil then many_cached = redis.call('HGET', KEYS[1], 'many') == '1' end
  return many_cached
end
-- holdCustomer: r needs its customer's one use of the code: it holds it
-- unless a line before it (not an apply in flight) does; a later holder
-- gives it up and waits.
local function holdCustomer(r)
  if many() then return end
  local me = r.cus .. '|' .. r.id
  local holder = redis.call('HGET', KEYS[3], r.cus)
  if holder and holder ~= r.id then
    local o = holder > r.id and load(holder)
    if not (o and o.st ~= 'reserved') then
      addflag(r, 'customer_already_redeemed')
      redis.call('ZADD', KEYS[10], 0, me)
      return
    end
    addflag(o, 'customer_already_redeemed')
    redis.call('ZADD', KEYS[10], 0, o.cus .. '|' .. o.id)
    save(o)
  end
  redis.call('HSET', KEYS[3], r.cus, r.id)
  redis.call('ZREM', KEYS[10], me)
  dropflag(r, 'customer_already_redeemed')
end
-- freeCustomer: r no longer needs the customer's use: the customer's first
-- waiting line takes it.
local function freeCustomer(r)
  redis.call('ZREM', KEYS[10], r.cus .. '|' .. r.id)
  dropflag(r, 'customer_already_redeemed')
  if redis.call('HGET', KEYS[3], r.cus) ~= r.id then return end
  local first = redis.call('ZRANGEBYLEX', KEYS[10], '[' .. r.cus .. '|', '[' .. r.cus .. '|\255', 'LIMIT', 0, 1)[1]
  local w = first and load(string.sub(first, #r.cus + 2))
  if first then redis.call('ZREM', KEYS[10], first) end
  if w then
    redis.call('HSET', KEYS[3], r.cus, w.id)
    dropflag(w, 'customer_already_redeemed')
    save(w)
    return
  end
  redis.call('HDEL', KEYS[3], r.cus)
end
-- A campaign code's single use (r.uc: the text; used, KEYS[11]: text -> the
-- line holding it) goes, like the customer's use, to the lines that need it
-- (holds_use) in ID order, whatever order the events come in: a line seen
-- late that comes first takes it from a later one (flagged
-- code_already_used, waiting), and a line that no longer needs it (ended
-- before any paid invoice) gives it to the first line waiting. A line still
-- reserved (an apply in flight) keeps what it took. The waiting lines of a
-- text are listed in used too, under 'w|' .. text (IDs, sorted, commas).
local function codeWaiters(text)
  local out = {}
  local raw = redis.call('HGET', KEYS[11], 'w|' .. text)
  if raw then
    for id in string.gmatch(raw, '[^,]+') do table.insert(out, id) end
  end
  return out
end
local function setCodeWaiter(text, id, waiting)
  local ws, keep = codeWaiters(text), {}
  for _, x in ipairs(ws) do
    if x ~= id then table.insert(keep, x) end
  end
  if waiting then table.insert(keep, id) end
  table.sort(keep)
  if #keep == 0 then
    redis.call('HDEL', KEYS[11], 'w|' .. text)
  else
    redis.call('HSET', KEYS[11], 'w|' .. text, table.concat(keep, ','))
  end
end
-- holdCode: r needs its code: it holds it unless a line before it (or an
-- apply in flight) does; a later holder gives it up and waits.
local function holdCode(r)
  if not r.uc then return end
  local holder = redis.call('HGET', KEYS[11], r.uc)
  if holder and holder ~= r.id then
    local o = load(holder)
    if o and holds_use(o) then
      if holder < r.id or o.st == 'reserved' then
        addflag(r, 'code_already_used')
        setCodeWaiter(r.uc, r.id, true)
        return
      end
      addflag(o, 'code_already_used')
      setCodeWaiter(o.uc, o.id, true)
      save(o)
    end
  end
  set_holder(r.uc, r.id)
  setCodeWaiter(r.uc, r.id, false)
  dropflag(r, 'code_already_used')
end
-- freeCode: r no longer needs its code: the first waiting line takes it.
local function freeCode(r)
  if not r.uc then return end
  setCodeWaiter(r.uc, r.id, false)
  dropflag(r, 'code_already_used')
  if redis.call('HGET', KEYS[11], r.uc) ~= r.id then return end
  for _, id in ipairs(codeWaiters(r.uc)) do
    local w = load(id)
    setCodeWaiter(r.uc, id, false)
    if w and holds_use(w) then
      set_holder(r.uc, w.id)
      dropflag(w, 'code_already_used')
      save(w)
      return
    end
  end
end
-- Stripe's reasons for an end, in precedence order for ends at the same
-- Stripe time (a cancellation also deletes the discount: canceled wins).
local stripe_end = {duration_over = 1, discount_replaced = 2, subscription_canceled = 3, discount_deleted = 4}
-- reend: a Stripe end (reason at Stripe time at) seen for r, which already
-- ended. ended_at and end_reason are the earliest Stripe end (precedence
-- breaking ties), so they do not depend on which event came first; an end
-- the adapter made (removed, stripe_refused) keeps its reason and takes
-- Stripe's time of it (es: the end's time is Stripe's).
local function reend(r, reason, at)
  if not stripe_end[reason] then return end
  if not r.es then
    r['end'], r.es = at, true
    return
  end
  local cur = stripe_end[r.why]
  if at < (r['end'] or 0) or (at == r['end'] and cur and stripe_end[reason] < cur) then
    r['end'] = at
    if cur then r.why = reason end
  end
end
-- finish: end a live redemption; one that never reached active gives its
-- unit back and frees the customer (and so no longer breaks the stock or
-- customer rule). fromStripe: reason and at are Stripe's facts.
local function finish(r, reason, at, fromStripe)
  if r.st == 'ended' or r.st == 'released' then
    if fromStripe then reend(r, reason, at) end
    return false
  end
  if r.st == 'reserved' then
    redis.call('HINCRBY', KEYS[1], 'reserved', -1)
    r.st = 'released'
  else
    r.st = 'ended'
  end
  if not holds_use(r) then
    -- It never took effect: it needs neither its unit nor the customer's
    -- use any more (stock_returned: the unit is not kept).
    give(r)
    freeCustomer(r)
    freeCode(r)
    if not unlimited() then r.ret = true end
  end
  if r.sub and redis.call('HGET', KEYS[4], r.sub) == r.id then redis.call('HDEL', KEYS[4], r.sub) end
  r['end'], r.why, r.lease = at, reason, nil
  if fromStripe then r.es = true end
  return true
end
-- once_over: a once coupon's discount deleted after a paid invoice carried
-- it ended because its duration was over, whichever event came first.
-- The deletion seen (dd) is such an end at its time even when another end
-- (a cancellation at the same time) replaced discount_deleted meanwhile: the
-- precedence of reend decides, as if the events had come in order.
local function once_over(r, once)
  if not once or (r.cy or 0) < 1 then return end
  if r.why == 'discount_deleted' then r.why = 'duration_over' end
  if r.dd and r.es then reend(r, 'duration_over', r.dd) end
end
-- confirm: the discount di is on the reservation's subscription sub; at is
-- the discount's start (Stripe's time). One clock per line: once confirmed,
-- a line is on Stripe's clock, so its created_at becomes the discount's start
-- too (the apply path, confirm.lua, does the same).
local function confirm(r, di, sub, at)
  if r.st == 'reserved' then
    redis.call('HINCRBY', KEYS[1], 'reserved', -1)
    r.st, r.cf, r.c, r.lease = 'pending', at, at, nil
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
-- find: the redemption holding discount d.di: by its ID; else the adapter's
-- own unconfirmed redemption on d.sub; else the customer's unconfirmed
-- reservation of a new subscription (which has no subscription ID until the
-- apply's answer), but only when d.sub is the subscription it made: the
-- subscription's promo_redemption_id metadata (d.srd) names it (on a code
-- without the customer rule, many(), only that metadata does). When d.srd
-- is not known yet, find answers 'ask' and the caller reads the
-- subscription from Stripe and runs the script again. Returns the record,
-- whether it was matched that way (and so needs confirming), and 'ask'.
local function find(d)
  local id = redis.call('HGET', KEYS[6], d.di)
  if id then return load(id), false end
  if d.sub ~= '' then
    id = redis.call('HGET', KEYS[4], d.sub)
    local r = id and load(id)
    if unconfirmed(r) then return r, true end
  end
  if many() then
    -- No customer index: the subscription's promo_redemption_id names the
    -- reservation of a new subscription (read from Stripe when not known).
    if d.sub == '' or d.srd == '-' or d.srd == '*' then return nil, false end
    if d.srd == '' then return nil, false, 'ask' end
    local r = load(d.srd)
    if unconfirmed(r) and r.cus == d.cus and (not r.sub or r.sub == d.sub) then return r, true end
    return nil, false
  end
  id = redis.call('HGET', KEYS[3], d.cus)
  local r = id and load(id)
  if not unconfirmed(r) then return nil, false end
  if r.sub then
    if r.sub == d.sub then return r, true end
    return nil, false
  end
  if d.sub == '' or d.srd == '*' or d.srd == r.id then return r, true end
  if d.srd == '' then return nil, false, 'ask' end
  return nil, false
end
-- adopt: a discount made outside the adapter becomes a pending ledger line
-- that takes stock; the rules it broke here are flagged (one code per
-- subscription spans codes: the caller checks it and FlagRedemption adds it).
-- Its times are the discount's start (Stripe's), whichever event shows it
-- first.
local function adopt(d)
  local r = {id = d.id, pc = d.pc, cus = d.cus, di = d.di, src = 'stripe', st = 'pending', c = d.start, cf = d.start, eff = d.start}
  if d.sub ~= '' then r.sub = d.sub end
  local h = redis.call('HMGET', KEYS[1], 'status', 'expires_ms')
  if h[1] ~= 'active' then addflag(r, 'code_inactive') end
  local exp = tonumber(h[2]) or 0
  if exp > 0 and d.start >= exp then addflag(r, 'code_expired') end
  take(r)
  holdCustomer(r)
  redis.call('ZADD', KEYS[5], 0, r.id)
  if r.sub then redis.call('HSET', KEYS[4], r.sub, r.id) end
  redis.call('HSET', KEYS[6], d.di, r.id)
  return r
end
