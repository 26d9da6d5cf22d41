-- campaign_attribute.lua: a ledger line of a campaign whose discount came
-- from one of its codes' Stripe promotion codes (Stripe Checkout) names that
-- code and takes its single use. Two lines holding one code: the one with
-- the lower ID keeps it (IDs follow the discounts' starts), unless the
-- holder is an apply still in flight (it keeps what it took); the other is
-- flagged code_already_used, whichever event came first. Idempotent.
-- A flagged line that holds a use waits for the code (uwait, "text|ID"): it
-- takes the code when the holder gives it back (freeCode in
-- ledger_prelude.lua).
-- KEYS: 1 rd, 2 used, 3 pcodes (promotion code ID -> text), 4 uwait, 5 the
-- campaign's code record (its redeemed count follows the text's holder, as
-- ledger_prelude.lua's count_code). ARGV: redemption ID, promotion code ID.
-- Returns {outcome, record JSON or ''}: none | known | attributed.
local text = redis.call('HGET', KEYS[3], ARGV[2])
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not text or not raw then return {'none', ''} end
local r = cjson.decode(raw)
if r.uc then return {'known', raw} end
r.uc = text
local function holds(o)
  return o.st == 'reserved' or o.st == 'pending' or o.st == 'active' or o.act ~= nil
end
local function flag(o, f)
  if not o.flags then o.flags = {} end
  for _, x in ipairs(o.flags) do
    if x == f then return end
  end
  table.insert(o.flags, f)
  table.sort(o.flags)
end
local holder = redis.call('HGET', KEYS[2], text)
local hraw = holder and holder ~= ARGV[1] and redis.call('HGET', KEYS[1], holder)
local o = hraw and cjson.decode(hraw)
if o and holds(o) and (holder < ARGV[1] or o.st == 'reserved') then
  flag(r, 'code_already_used')
  if holds(r) then redis.call('ZADD', KEYS[4], 0, text .. '|' .. ARGV[1]) end
else
  if o and holds(o) then
    flag(o, 'code_already_used')
    redis.call('HSET', KEYS[1], holder, cjson.encode(o))
    redis.call('ZADD', KEYS[4], 0, text .. '|' .. holder)
  end
  redis.call('HSET', KEYS[2], text, ARGV[1])
  -- The text was held (by o) before and is held (by r) after, or not.
  local was, now = (o and holds(o)) and 1 or 0, holds(r) and 1 or 0
  if was ~= now and redis.call('HEXISTS', KEYS[5], 'redeemed') == 1 then
    redis.call('HINCRBY', KEYS[5], 'redeemed', now - was)
  end
end
raw = cjson.encode(r)
redis.call('HSET', KEYS[1], ARGV[1], raw)
return {'attributed', raw}
