-- finish.lua: releases a reservation or ends a redemption (ledger_prelude.lua's
-- finish). ARGV: redemption ID, reason, now ms.
-- Returns {outcome, record JSON, stripe_active_changed}.
-- KEYS (redemptionKeys): 1 code, 2 rd, 3 cust, 4 subs, 5 ledger, 6 disc, 7 inv.
-- Runs after ledger_prelude.lua.
local r = load(ARGV[1])
if not r then return {'not_found', '', 0} end
if r.st == 'released' or r.st == 'ended' then return {'unchanged', cjson.encode(r), 0} end
local before = want()
finish(r, ARGV[2], tonumber(ARGV[3]))
return {'finished', save(r), flip(before)}
