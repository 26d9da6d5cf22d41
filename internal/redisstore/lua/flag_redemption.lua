-- flag_redemption.lua: adds a flag to a ledger line. ARGV: redemption ID, flag.
-- KEYS (redemptionKeys): 1 code, 2 rd, 3 cust, 4 subs, 5 ledger, 6 disc, 7 inv, 8 held, 9 wait, 10 cwait.
-- Runs after ledger_prelude.lua.
local r = load(ARGV[1])
if not r then return {'not_found', '', 0} end
addflag(r, ARGV[2])
return {'flagged', save(r), 0}
