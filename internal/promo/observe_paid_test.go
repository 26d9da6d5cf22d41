package promo

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"testing"
	"time"
)

// paidStore records the calls InvoicePaid makes; every other ObserveStore
// method is the nil interface's (a call would panic). counter false hides
// MarkPaidAndCountInvoice (a store that is not a PaidCounter).
type paidStore struct {
	ObserveStore
	markErr, countErr error
	unread            bool // the first count asks for the subscription (ErrSubscriptionUnread)
	calls             []string
}

func (s *paidStore) MarkCustomerPaid(context.Context, string, time.Time) error {
	s.calls = append(s.calls, "mark")
	return s.markErr
}

func (s *paidStore) CountInvoice(_ context.Context, _ string, inv PaidInvoice) (Counted, error) {
	s.calls = append(s.calls, "count")
	return s.counted(inv)
}

func (s *paidStore) counted(inv PaidInvoice) (Counted, error) {
	if s.unread && !inv.Discount.SubscriptionRead {
		return Counted{}, ErrSubscriptionUnread
	}
	if s.countErr != nil {
		return Counted{}, s.countErr
	}
	return Counted{Redemption: &Redemption{ID: "rd_1"}, New: true, How: ObservedConfirmed}, nil
}

func (s *paidStore) UnmarkDue(context.Context, string, string) error {
	s.calls = append(s.calls, "unmark due")
	return nil
}

type paidCounterStore struct{ *paidStore }

func (s paidCounterStore) MarkPaidAndCountInvoice(_ context.Context, _ string, _ time.Time, _ string, inv PaidInvoice) (Counted, error, error) {
	s.calls = append(s.calls, "mark+count")
	c, err := s.counted(inv)
	return c, s.markErr, err
}

type subscriptionReader struct{ BillingGateway }

func (subscriptionReader) GetSubscription(_ context.Context, id string) (*Subscription, error) {
	return &Subscription{ID: id}, nil
}

// InvoicePaid with a PaidCounter sends the paid mark with the count, and
// keeps what mark-then-count did on every failure: a failed mark fails the
// event (so Stripe retries), after the count's follow-ups when the count
// went through.
func TestInvoicePaidMarksAndCounts(t *testing.T) {
	unavailable := Unavailable("Redis", errors.New("connection refused"))
	for _, tc := range []struct {
		name              string
		counter           bool
		amountPaid        int64
		markErr, countErr error
		unread            bool
		calls             []string
		err               error
	}{
		{name: "together", counter: true, amountPaid: 1800, calls: []string{"mark+count", "unmark due"}},
		{name: "together, the mark fails", counter: true, amountPaid: 1800, markErr: unavailable,
			calls: []string{"mark+count", "unmark due"}, err: unavailable},
		{name: "together, the count fails", counter: true, amountPaid: 1800, countErr: unavailable,
			calls: []string{"mark+count"}, err: unavailable},
		{name: "together, both fail", counter: true, amountPaid: 1800, markErr: unavailable, countErr: errors.New("script"),
			calls: []string{"mark+count"}, err: unavailable},
		{name: "together, an unknown code", counter: true, amountPaid: 1800, countErr: ErrNotFound,
			calls: []string{"mark+count"}},
		{name: "together, then the subscription read", counter: true, amountPaid: 1800, unread: true,
			calls: []string{"mark+count", "count", "unmark due"}},
		{name: "nothing paid: no mark", counter: true, calls: []string{"count", "unmark due"}},
		{name: "one after the other", amountPaid: 1800, calls: []string{"mark", "count", "unmark due"}},
		{name: "one after the other, the mark fails", amountPaid: 1800, markErr: unavailable,
			calls: []string{"mark"}, err: unavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := &paidStore{markErr: tc.markErr, countErr: tc.countErr, unread: tc.unread}
			var store ObserveStore = ps
			if tc.counter {
				store = paidCounterStore{ps}
			}
			r := &Observer{Store: store, Log: slog.New(slog.DiscardHandler), Billing: subscriptionReader{}}
			at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
			err := r.InvoicePaid(context.Background(), InvoicePaidEvent{InvoiceID: "in_1", Currency: "usd",
				AmountPaid: tc.amountPaid, At: at, Customer: "cus_1", Subscription: "sub_1",
				Discount: &DiscountEvent{DiscountID: "di_1", CouponID: "pc_1", Customer: "cus_1", Subscription: "sub_1", At: at}})
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if !reflect.DeepEqual(ps.calls, tc.calls) {
				t.Fatalf("calls %v, want %v", ps.calls, tc.calls)
			}
		})
	}
}
