-- finish.lua: releases a reservation or ends a redemption (ledger_prelude.lua's
-- finish), for the adapter (removed, stripe_refused, ...) or for Stripe's
-- cancellation of the subscription. On a line that already ended, a Stripe
-- end only moves ended_at/end_reason to the earliest Stripe end, and the
-- adapter's own removal names the reason of a discount deletion it caused.
-- KEYS (redemptionKeys): 1 code, 2 rd, 3 cust, 4 subs, 5 ledger, 6 disc, 7 inv, 8 held, 9 wait, 10 cwait.
-- ARGV: 1 redemption ID, 2 reason, 3 at ms, 4 '1' when reason and at are
-- Stripe's facts (else the adapter's clock).
-- Returns {outcome, record JSON, stripe_active_changed}.
-- Runs after ledger_prelude.lua.
local r = load(ARGV[1])
if not r then return {'not_found', '', 0} end
local before = want()
if r.st == 'released' or r.st == 'ended' then
  local why, at = r.why, r['end']
  if ARGV[4] == '1' then
    reend(r, ARGV[2], tonumber(ARGV[3]))
  elseif ARGV[2] == 'removed' and r.es and stripe_end[r.why] then
    r.why = 'removed'
  end
  if why == r.why and at == r['end'] then return {'unchanged', cjson.encode(r), 0} end
  return {'unchanged', save(r), 0}
end
finish(r, ARGV[2], tonumber(ARGV[3]), ARGV[4] == '1')
return {'finished', save(r), flip(before)}
