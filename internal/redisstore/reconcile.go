package redisstore

import (
	"context"
	"errors"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/redis/go-redis/v9"
)

// Webhook reconciliation on the code's keys (KEYS as redemptionKeys:
// code, rd, cust, subs, ledger, disc, inv). Each script is idempotent and
// order-safe: discounts and invoices are looked up by their Stripe IDs,
// states only move forward, and a discount first seen ending is remembered.

func discKey(codeID string) string { return "ba:{" + codeID + "}:disc" }
func invKey(codeID string) string  { return "ba:{" + codeID + "}:inv" }

// luaLedger is the prelude of the ledger scripts: the WantStripeActive
// predicate, flags, and the stock and index moves a redemption makes.
const luaLedger = `
local function want()
  local h = redis.call('HMGET', KEYS[1], 'status', 'unlimited', 'stock', 'reserved')
  return h[1] == 'active' and (h[2] == '1' or (tonumber(h[3]) or 0) > 0 or (tonumber(h[4]) or 0) > 0)
end
local function flip(before)
  if before ~= want() then return 1 end
  return 0
end
local function addflag(r, f)
  if not r.flags then r.flags = {} end
  for _, x in ipairs(r.flags) do
    if x == f then return end
  end
  table.insert(r.flags, f)
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
-- save stores r without what its place gives (its ID is the hash field,
-- the code ID the key) and returns it whole, for the caller.
local function save(r)
  local id, pc = r.id, r.pc
  r.id, r.pc = nil, nil
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
-- take: r holds a unit of stock from now on, or is flagged when none is left.
local function take(r)
  if r.tk or redis.call('HGET', KEYS[1], 'unlimited') == '1' then return end
  if (tonumber(redis.call('HGET', KEYS[1], 'stock')) or 0) > 0 then
    redis.call('HINCRBY', KEYS[1], 'stock', -1)
    redis.call('HINCRBY', KEYS[1], 'held', 1)
    r.tk = true
  else
    addflag(r, 'stock_exhausted')
  end
end
-- give: r's unit of stock goes back.
local function give(r)
  if not r.tk then return end
  redis.call('HINCRBY', KEYS[1], 'stock', 1)
  redis.call('HINCRBY', KEYS[1], 'held', -1)
  r.tk, r.ret = nil, true
end
-- holdCustomer: r is the customer's use of the code, unless another is.
local function holdCustomer(r)
  local holder = redis.call('HGET', KEYS[3], r.cus)
  if holder and holder ~= r.id then addflag(r, 'customer_already_redeemed') else redis.call('HSET', KEYS[3], r.cus, r.id) end
end
-- finish: end a live redemption; one that never reached active gives its
-- unit back and frees the customer.
local function finish(r, reason, at)
  if r.st == 'reserved' then
    redis.call('HINCRBY', KEYS[1], 'reserved', -1)
    r.st = 'released'
  else
    r.st = 'ended'
  end
  if not r.act then
    give(r)
    if redis.call('HGET', KEYS[3], r.cus) == r.id then redis.call('HDEL', KEYS[3], r.cus) end
  end
  if r.sub and redis.call('HGET', KEYS[4], r.sub) == r.id then redis.call('HDEL', KEYS[4], r.sub) end
  r['end'], r.why, r.lease = at, reason, nil
end
-- confirm: the discount di is on the reservation's subscription sub.
local function confirm(r, di, sub, at)
  if r.st == 'reserved' then
    redis.call('HINCRBY', KEYS[1], 'reserved', -1)
    r.st, r.cf, r.lease = 'pending', at, nil
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
-- find: the redemption holding discount di: by its ID; else the adapter's
-- own unconfirmed redemption on sub, or the customer's (a new subscription's
-- reservation has no subscription yet, and a customer holds at most one
-- redemption of the code). Returns the record and whether it was matched
-- that way (and so needs confirming).
local function find(di, sub, cus)
  local id = redis.call('HGET', KEYS[6], di)
  if id then return load(id), false end
  if sub ~= '' then
    id = redis.call('HGET', KEYS[4], sub)
    local r = id and load(id)
    if unconfirmed(r) then return r, true end
  end
  id = redis.call('HGET', KEYS[3], cus)
  local r = id and load(id)
  if unconfirmed(r) and (not r.sub or r.sub == sub) then return r, true end
  return nil, false
end
-- adopt: a discount made outside the adapter becomes a pending ledger line
-- that takes stock; the rules it broke here are flagged (one code per
-- subscription spans codes: the caller checks it and FlagRedemption adds it).
-- d = {id, pc, cus, sub, di, at}
local function adopt(d)
  local r = {id = d.id, pc = d.pc, cus = d.cus, di = d.di, src = 'stripe', st = 'pending', c = d.at, cf = d.at, eff = d.at}
  if d.sub ~= '' then r.sub = d.sub end
  local h = redis.call('HMGET', KEYS[1], 'status', 'expires_ms')
  if h[1] ~= 'active' then addflag(r, 'code_inactive') end
  local exp = tonumber(h[2]) or 0
  if exp > 0 and d.at >= exp then addflag(r, 'code_expired') end
  take(r)
  holdCustomer(r)
  redis.call('ZADD', KEYS[5], 0, r.id)
  if r.sub then redis.call('HSET', KEYS[4], r.sub, r.id) end
  redis.call('HSET', KEYS[6], d.di, r.id)
  return r
end
`

// observedArgs are the ARGV shared by the reconciliation scripts: discount,
// customer, subscription, at ms, new ID, code ID, Stripe's times_redeemed.
func observedArgs(codeID string, d promo.ObservedDiscount) []any {
	return []any{d.DiscountID, d.Customer, d.Subscription, ms(d.At), d.NewID, codeID, d.CouponTimesRedeemed}
}

const luaObservedArgs = `
local d = {di = ARGV[1], cus = ARGV[2], sub = ARGV[3], at = tonumber(ARGV[4]), id = ARGV[5], pc = ARGV[6]}
if not observed(tonumber(ARGV[7])) then return {'not_found', '', 0, ''} end
`

// observeScript: customer.discount.created. Returns {outcome, record, flip}.
var observeScript = redis.NewScript(luaLedger + luaObservedArgs + `
local before = want()
local r, ownPending = find(d.di, d.sub, d.cus)
if r and not ownPending then return {'known', cjson.encode(r), 0, 'known'} end
if r then
  confirm(r, d.di, d.sub, d.at)
  return {'confirmed', save(r), flip(before), 'confirmed'}
end
r = adopt(d)
return {'adopted', save(r), flip(before), 'adopted'}
`)

// endDiscountScript: customer.discount.deleted (or replaced). ARGV after the
// observed ones: reason, once ('1' when the coupon lasts one invoice).
var endDiscountScript = redis.NewScript(luaLedger + luaObservedArgs + `
local before = want()
local r, own = find(d.di, d.sub, d.cus)
if not r then
  r = {id = d.id, pc = d.pc, cus = d.cus, di = d.di, src = 'stripe', st = 'ended', c = d.at, why = ARGV[8]}
  r['end'] = d.at
  if d.sub ~= '' then r.sub = d.sub end
  redis.call('ZADD', KEYS[5], 0, r.id)
  redis.call('HSET', KEYS[6], d.di, r.id)
  return {'tombstone', save(r), 0}
end
if r.st == 'ended' or r.st == 'released' then return {'unchanged', cjson.encode(r), 0} end
local reason = ARGV[8]
if ARGV[9] == '1' and (r.cy or 0) >= 1 then reason = 'duration_over' end
-- The adapter's own reservation not yet tied to the discount: Stripe had the
-- discount, so the line is confirmed and ends (it is not released, and the
-- apply's late Confirm cannot reopen it).
if own then confirm(r, d.di, d.sub, d.at) end
finish(r, reason, d.at)
return {'finished', save(r), flip(before)}
`)

// countInvoiceScript: invoice.paid with one of our discounts. ARGV after the
// observed ones: invoice ID, currency, discounted amount.
var countInvoiceScript = redis.NewScript(luaLedger + luaObservedArgs + `
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
`)

// flagScript adds a flag to a ledger line. ARGV: redemption ID, flag.
var flagScript = redis.NewScript(luaLedger + `
local r = load(ARGV[1])
if not r then return {'not_found', '', 0} end
addflag(r, ARGV[2])
return {'flagged', save(r), 0}
`)

// ObserveDiscount implements promo.ReconcileStore.
func (s *Store) ObserveDiscount(ctx context.Context, codeID string, d promo.ObservedDiscount) (*promo.Redemption, promo.ObserveOutcome, promo.StockChange, error) {
	res, err := s.runLedger(ctx, observeScript, codeID, observedArgs(codeID, d)...)
	if err != nil {
		return nil, 0, promo.StockChange{}, err
	}
	return res.r, res.how, res.change, nil
}

// EndDiscount implements promo.ReconcileStore.
func (s *Store) EndDiscount(ctx context.Context, codeID string, d promo.ObservedDiscount, reason string) (*promo.Redemption, promo.StockChange, error) {
	once := "0"
	if d.Once {
		once = "1"
	}
	res, err := s.runLedger(ctx, endDiscountScript, codeID, append(observedArgs(codeID, d), reason, once)...)
	if err != nil {
		return nil, promo.StockChange{}, err
	}
	return res.r, res.change, nil
}

// CountInvoice implements promo.ReconcileStore.
func (s *Store) CountInvoice(ctx context.Context, codeID string, inv promo.PaidInvoice) (promo.Counted, error) {
	res, err := s.runLedger(ctx, countInvoiceScript, codeID,
		append(observedArgs(codeID, inv.Discount), inv.InvoiceID, inv.Currency, inv.Amount)...)
	if err != nil {
		return promo.Counted{}, err
	}
	return promo.Counted{Redemption: res.r, New: res.outcome == "counted", How: res.how, Change: res.change}, nil
}

// SubscriptionRedemption implements promo.ReconcileStore.
func (s *Store) SubscriptionRedemption(ctx context.Context, codeID, sub string) (*promo.Redemption, error) {
	id, err := s.rdb.HGet(ctx, subsKey(codeID), sub).Result()
	if errors.Is(err, redis.Nil) {
		return nil, promo.ErrNotFound
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return s.GetRedemption(ctx, codeID, id)
}

// MarkCustomerPaid implements promo.ReconcileStore.
func (s *Store) MarkCustomerPaid(ctx context.Context, customer string) error {
	return unavailable(s.rdb.SAdd(ctx, keyPaid, customer).Err())
}

// FlagRedemption implements promo.ReconcileStore.
func (s *Store) FlagRedemption(ctx context.Context, codeID, id, flag string) (*promo.Redemption, error) {
	res, err := s.runLedger(ctx, flagScript, codeID, id, flag)
	return res.r, err
}

// ledgerResult is a ledger script's answer {outcome, record,
// stripe_active_changed, how the line was found (observe and count only)}.
type ledgerResult struct {
	outcome string
	r       *promo.Redemption
	change  promo.StockChange
	how     promo.ObserveOutcome
}

var observeOutcomes = map[string]promo.ObserveOutcome{"known": promo.ObservedKnown,
	"confirmed": promo.ObservedConfirmed, "adopted": promo.ObservedAdopted}

func (s *Store) runLedger(ctx context.Context, script *redis.Script, codeID string, args ...any) (ledgerResult, error) {
	res, err := script.Run(ctx, s.rdb, redemptionKeys(codeID), args...).Slice()
	if err != nil {
		return ledgerResult{}, unavailable(err)
	}
	out := ledgerResult{outcome: str(res[0])}
	if out.outcome == "not_found" {
		return out, promo.ErrNotFound
	}
	if raw := str(res[1]); raw != "" {
		if out.r, err = decodeRedemption(codeID, "", raw); err != nil {
			return out, err
		}
	}
	changed, _ := res[2].(int64)
	out.change.StripeActiveChanged = changed == 1
	if len(res) > 3 {
		out.how = observeOutcomes[str(res[3])]
	}
	return out, nil
}
