-- count_invoice.lua: invoice.paid with one of our discounts: counts the
-- invoice once (by ID) on its line, which it may confirm or adopt first.
-- activated_at is the earliest paid_at of the line's invoices, whichever
-- arrives first.
-- KEYS (redemptionKeysFor): 1 code, 2 rd, 3 cust, 4 subs, 5 ledger, 6 disc,
-- 7 inv (this invoice's counted mark), 8 held, 9 wait, 10 cwait.
-- ARGV 1-11: discount_args.lua (at: the invoice's paid_at); 12 invoice ID,
-- 13 currency, 14 discounted amount (minor units), 15 how long the counted
-- mark is kept (ms: beyond Stripe's retries of the event).
-- Returns {outcome, record, stripe_active_changed, how}: counted | duplicate
-- | ask | mark.
-- Runs after ledger_prelude.lua and discount_args.lua.
if redis.call('EXISTS', KEYS[7]) == 1 then
  local id = redis.call('HGET', KEYS[6], d.di)
  local r = id and load(id)
  return {'duplicate', (r and cjson.encode(r)) or '', 0, 'known'}
end
local before = want()
local r, own, ask = find(d)
if ask then return {'ask', '', 0, ''} end
if not r and not d.marked then return {'mark', '', 0, ''} end
redis.call('SET', KEYS[7], '1', 'PX', ARGV[15])
local how = 'known'
if own then
  confirm(r, d.di, d.sub, d.start)
  how = 'confirmed'
elseif not r then
  r = adopt(d)
  how = 'adopted'
end
local cur, amount = ARGV[13], tonumber(ARGV[14])
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
    holdCode(r)
  end
elseif d.at < r.act then
  r.act = d.at
end
once_over(r, d.once)
return {'counted', save(r), flip(before), how}
