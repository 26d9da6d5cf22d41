-- restock.lua: the admin changed a code's stock (or made it unlimited):
-- the code's fields are written and, in the same step, the lines waiting
-- for a unit get one in ID order while stock lasts, as had the stock been
-- there when they came (the rebuild's order); on an unlimited code no line
-- waits.
-- KEYS (redemptionKeys): 1 code, 2 rd, 3 cust, 4 subs, 5 ledger, 6 disc, 7 inv, 8 held, 9 wait, 10 cwait.
-- ARGV: the code hash's field/value pairs to write first (codeFields).
-- Returns the number of lines served.
-- Runs after ledger_prelude.lua.
if #ARGV > 0 then redis.call('HSET', KEYS[1], unpack(ARGV)) end
local served = 0
while true do
  local first = redis.call('ZRANGEBYLEX', KEYS[9], '-', '+', 'LIMIT', 0, 1)[1]
  if not first then break end
  local w = load(first)
  if not w then
    redis.call('ZREM', KEYS[9], first)
  elseif unlimited() then
    redis.call('ZREM', KEYS[9], first)
    dropflag(w, 'stock_exhausted')
    save(w)
    served = served + 1
  elseif (tonumber(redis.call('HGET', KEYS[1], 'stock')) or 0) > 0 then
    redis.call('HINCRBY', KEYS[1], 'stock', -1)
    redis.call('HINCRBY', KEYS[1], 'held', 1)
    gets_unit(w)
    save(w)
    served = served + 1
  else
    break
  end
end
return served
