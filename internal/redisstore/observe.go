package redisstore

import (
	"context"
	"errors"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/redis/go-redis/v9"
)

// What Stripe reports (webhook events) on the code's keys. Each script is
// idempotent and order-safe: discounts and invoices are looked up by their
// Stripe IDs, states only move forward, and a discount first seen ending is
// remembered.

// InvoiceKeep is how long a counted invoice's mark (invKey) is kept: as long
// as processed event IDs (promo.EventKeep), beyond Stripe's 3 days of
// retries, so a redelivery never counts twice and counted invoices do not
// pile up.
const InvoiceKeep = promo.EventKeep

// observedArgs are the ARGV shared by the scripts about a Stripe discount
// (lua/discount_args.lua).
func observedArgs(codeID string, d promo.ObservedDiscount) []any {
	srd := ""
	switch {
	case d.MatchByCustomer:
		srd = "*"
	case d.SubscriptionRead && d.SubscriptionRedemptionID == "":
		srd = "-"
	case d.SubscriptionRead:
		srd = d.SubscriptionRedemptionID
	}
	return []any{d.DiscountID, d.Customer, d.Subscription, ms(d.At), d.NewID, codeID, d.CouponTimesRedeemed,
		ms(d.Start), boolInt(d.Once), srd, 0}
}

// observedMarked is the index in observedArgs of the marker flag (ARGV 11).
const observedMarked = 10

// runObserved runs a script about a Stripe discount. One that would adopt
// a line made outside the adapter answers "mark" until the customer's
// marker is written (markers.go): then the marker is added and the script
// runs again with the flag set (a known line stays one round trip).
func (s *Store) runObserved(ctx context.Context, script *redis.Script, codeID string, keys []string, customer string, args []any) (ledgerResult, error) {
	res, err := s.runLedgerKeys(ctx, script, codeID, keys, args...)
	return s.markedRerun(ctx, script, codeID, keys, customer, args, res, err)
}

// markedRerun is runObserved's second step, given the script's first
// answer: on "mark", the marker is added and the script runs again.
func (s *Store) markedRerun(ctx context.Context, script *redis.Script, codeID string, keys []string, customer string, args []any, res ledgerResult, err error) (ledgerResult, error) {
	if res.outcome != "mark" || err != nil {
		return res, err
	}
	if err := s.markCustomers(ctx, codeID, customer); err != nil {
		return ledgerResult{}, err
	}
	args[observedMarked] = 1
	return s.runLedgerKeys(ctx, script, codeID, keys, args...)
}

// observeScript: lua/observe_discount.lua.
var observeScript = observedScript("observe_discount")

// endDiscountScript: lua/end_discount.lua.
var endDiscountScript = observedScript("end_discount")

// countInvoiceScript: lua/count_invoice.lua.
var countInvoiceScript = observedScript("count_invoice")

// flagScript: lua/flag_redemption.lua.
var flagScript = ledgerScript("flag_redemption")

// ObserveDiscount implements promo.ObserveStore.
func (s *Store) ObserveDiscount(ctx context.Context, codeID string, d promo.ObservedDiscount) (*promo.Redemption, promo.ObserveOutcome, promo.StockChange, error) {
	res, err := s.runObserved(ctx, observeScript, codeID, redemptionKeys(codeID), d.Customer, observedArgs(codeID, d))
	if err != nil {
		return nil, 0, promo.StockChange{}, err
	}
	return res.r, res.how, res.change, nil
}

// EndDiscount implements promo.ObserveStore.
func (s *Store) EndDiscount(ctx context.Context, codeID string, d promo.ObservedDiscount, reason string) (*promo.Redemption, promo.StockChange, error) {
	res, err := s.runObserved(ctx, endDiscountScript, codeID, redemptionKeys(codeID), d.Customer, append(observedArgs(codeID, d), reason))
	if err != nil {
		return nil, promo.StockChange{}, err
	}
	return res.r, res.change, nil
}

// CountInvoice implements promo.ObserveStore.
func (s *Store) CountInvoice(ctx context.Context, codeID string, inv promo.PaidInvoice) (promo.Counted, error) {
	keys, args := countInvoiceKeysArgs(codeID, inv)
	return counted(s.runObserved(ctx, countInvoiceScript, codeID, keys, inv.Discount.Customer, args))
}

func countInvoiceKeysArgs(codeID string, inv promo.PaidInvoice) ([]string, []any) {
	return redemptionKeysFor(codeID, inv.InvoiceID),
		append(observedArgs(codeID, inv.Discount), inv.InvoiceID, inv.Currency, inv.Amount, InvoiceKeep.Milliseconds())
}

func counted(res ledgerResult, err error) (promo.Counted, error) {
	if err != nil {
		return promo.Counted{}, err
	}
	return promo.Counted{Redemption: res.r, New: res.outcome == "counted", How: res.how, Change: res.change}, nil
}

var _ promo.PaidCounter = (*Store)(nil)

// MarkPaidAndCountInvoice implements promo.PaidCounter. On a single Redis the
// customer's paid mark and the invoice's count (independent keys, each
// script idempotent) go in one pipeline: one round trip instead of two. On
// a Redis Cluster they are sent one after the other, as MarkCustomerPaid
// and CountInvoice do: there each write waits for a replica's
// acknowledgement (clusterNodeHook), which a pipeline does not.
func (s *Store) MarkPaidAndCountInvoice(ctx context.Context, customer string, until time.Time, codeID string, inv promo.PaidInvoice) (c promo.Counted, markErr, err error) {
	if s.cluster {
		if markErr = s.MarkCustomerPaid(ctx, customer, until); markErr != nil {
			return promo.Counted{}, markErr, markErr
		}
		c, err = s.CountInvoice(ctx, codeID, inv)
		return c, nil, err
	}
	markKeys, markArgs := markPaidKeysArgs(customer, until)
	countKeys, countArgs := countInvoiceKeysArgs(codeID, inv)
	mark := evalShaCmd(ctx, markPaidScript, markKeys, markArgs...)
	count := evalShaCmd(ctx, countInvoiceScript, countKeys, countArgs...)
	s.shared.do(ctx, mark, count) // each command's own error is read below
	mark = evalIfNoScript(ctx, s.rdb, markPaidScript, mark, markKeys, markArgs...)
	count = evalIfNoScript(ctx, s.rdb, countInvoiceScript, count, countKeys, countArgs...)
	defer s.dropSnapshot(codeID)
	res, err := count.Slice()
	lr, err := s.ledgerReply(codeID, res, err)
	c, err = counted(s.markedRerun(ctx, countInvoiceScript, codeID, countKeys, inv.Discount.Customer, countArgs, lr, err))
	return c, unavailable(mark.Err()), err
}

// SubscriptionRedemption implements promo.ObserveStore.
func (s *Store) SubscriptionRedemption(ctx context.Context, codeID, sub string) (*promo.Redemption, error) {
	return s.redemptionBy(ctx, codeID, subsKey(codeID), sub)
}

// redemptionBy reads the line an index hash of the code names.
func (s *Store) redemptionBy(ctx context.Context, codeID, index, field string) (*promo.Redemption, error) {
	id, err := s.rdb.HGet(ctx, index, field).Result()
	if errors.Is(err, redis.Nil) {
		return nil, promo.ErrNotFound
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return s.GetRedemption(ctx, codeID, id)
}

// markPaidScript: lua/mark_paid.lua.
var markPaidScript = plainScript("mark_paid")

// MarkCustomerPaid implements promo.ObserveStore: the customer's mark lasts
// until until (the latest paid invoice's paid_at + promo.PaidKeep), or
// longer if an earlier call set it so; an until already past writes nothing.
func (s *Store) MarkCustomerPaid(ctx context.Context, customer string, until time.Time) error {
	keys, args := markPaidKeysArgs(customer, until)
	return unavailable(markPaidScript.Run(ctx, s.rdb, keys, args...).Err())
}

func markPaidKeysArgs(customer string, until time.Time) ([]string, []any) {
	return []string{paidKey(customer)}, []any{until.UnixMilli(), time.Now().UnixMilli()}
}

// FlagRedemption implements promo.ObserveStore.
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
	return s.runLedgerKeys(ctx, script, codeID, redemptionKeys(codeID), args...)
}

func (s *Store) runLedgerKeys(ctx context.Context, script *redis.Script, codeID string, keys []string, args ...any) (ledgerResult, error) {
	defer s.dropSnapshot(codeID)
	res, err := script.Run(ctx, s.rdb, keys, args...).Slice()
	return s.ledgerReply(codeID, res, err)
}

// ledgerReply reads a ledger script's reply (see ledgerResult).
func (s *Store) ledgerReply(codeID string, res []any, err error) (ledgerResult, error) {
	if err != nil {
		return ledgerResult{}, unavailable(err)
	}
	out := ledgerResult{outcome: str(res[0])}
	switch out.outcome {
	case "not_found":
		return out, promo.ErrNotFound
	case "ask":
		return out, promo.ErrSubscriptionUnread
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
