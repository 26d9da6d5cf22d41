-- campaign_redeemed.lua: a campaign's count of redeemed codes (the code
-- hash's redeemed: texts in used whose line holds_use), kept by the ledger
-- scripts (ledger_prelude.lua's count_code). A campaign made before the
-- counter has no field: it is counted here once, atomically, and kept from
-- then on.
-- KEYS (redemptionKeys): 1 code, 2 rd, ..., 11 used. Returns the count.
-- Runs after ledger_prelude.lua.
local n = redis.call('HGET', KEYS[1], 'redeemed')
if n then return tonumber(n) end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local used = redis.call('HGETALL', KEYS[11])
local c = 0
for i = 1, #used, 2 do
  -- 'w|' .. text fields list the lines waiting for a text: skip them.
  local r = string.sub(used[i], 1, 2) ~= 'w|' and load(used[i + 1])
  if r and holds_use(r) then c = c + 1 end
end
redis.call('HSET', KEYS[1], 'redeemed', c)
return c
