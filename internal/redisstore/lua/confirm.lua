-- confirm.lua: moves a reservation to pending. A released one is taken back
-- (Stripe has the discount after all: the request's own failure path or the
-- sweeper released it too early): it takes a unit of stock again, or is
-- flagged when none is left or the customer holds another redemption. A
-- pending or active one only gets its effective time if a webhook confirmed
-- it first; an ended one is left alone: a late confirmation is stale.
-- ARGV: redemption ID, subscription, discount ID, effective ms, now ms.
-- Returns {outcome, record JSON, stripe_active_changed}.
-- KEYS (redemptionKeys): 1 code, 2 rd, 3 cust, 4 subs, 5 ledger, 6 disc, 7 inv, 8 held, 9 wait, 10 cwait.
-- Runs after ledger_prelude.lua.
local r = load(ARGV[1])
if not r then return {'not_found', '', 0} end
if r.st == 'pending' or r.st == 'active' then
  -- Confirmed already (a webhook can be first); fill what only the apply knows.
  if not r.eff and ARGV[4] ~= '0' then
    r.eff = tonumber(ARGV[4])
    return {'unchanged', save(r), 0}
  end
  return {'unchanged', cjson.encode(r), 0}
end
if r.st ~= 'reserved' and r.st ~= 'released' then return {'unchanged', cjson.encode(r), 0} end
local before = want()
if r.st == 'reserved' then
  redis.call('HINCRBY', KEYS[1], 'reserved', -1)
else
  take(r)
  holdCustomer(r)
  r.ret, r['end'], r.why = nil, nil, nil
end
r.st, r.lease = 'pending', nil
if ARGV[2] ~= '' then r.sub = ARGV[2] end
if r.sub then redis.call('HSET', KEYS[4], r.sub, r.id) end
r.di, r.eff, r.cf = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
-- One clock per line: confirmed, it is on Stripe's (created_at too).
r.c = r.cf
if r.di ~= '' then redis.call('HSET', KEYS[6], r.di, r.id) end
return {'confirmed', save(r), flip(before)}
