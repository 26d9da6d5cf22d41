-- count_invoice.lua: invoice.paid with one of our discounts. ARGV after the
-- observed ones: invoice ID, currency, discounted amount.
-- KEYS (redemptionKeys): 1 code, 2 rd, 3 cust, 4 subs, 5 ledger, 6 disc, 7 inv.
-- ARGV 1-7 (discount_args.lua): discount, customer, subscription, at ms, new ID, code ID, Stripe times_redeemed.
-- Runs after ledger_prelude.lua and discount_args.lua.
if redis.call('SADD', KEYS[7], ARGV[8]) == 0 then
  local id = redis.call('HGET', KEYS[6], d.di)
  local r = id and load(id)
  return {'duplicate', (r and cjson.encode(r)) or '', 0, 'known'}
end
local before = want()
local r, ownPending = find(d.di, d.sub, d.cus)
local how = 'known'
if ownPending then
  confirm(r, d.di, d.sub, d.at)
  how = 'confirmed'
elseif not r then
  r = adopt(d)
  how = 'adopted'
end
local cur, amount = ARGV[9], tonumber(ARGV[10])
r.cy = (r.cy or 0) + 1
if not r.amt then r.amt = {} end
r.amt[cur] = (r.amt[cur] or 0) + amount
redis.call('HINCRBY', KEYS[1], 'amt:' .. cur, amount)
if not r.act then
  r.act = d.at
  redis.call('HINCRBY', KEYS[1], 'uses', 1)
  if r.st == 'pending' then
    r.st = 'active'
  else
    -- It ended before its first paid invoice was seen: it was used after all.
    r.ret = nil
    take(r)
    holdCustomer(r)
  end
end
return {'counted', save(r), flip(before), how}
