package stripesim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// Persistence: with Options.StatePath (use Open), the whole Stripe state is
// kept in one JSON file — customers, products, prices, coupons (deleted ones
// too, where a discount still names them), promotion codes, subscriptions,
// discounts, invoices, invoice items, payment methods, test clocks, events,
// the Stripe CLI's per-device secrets and finished idempotency records — so a
// restarted simulator continues where it stopped (`make run`). The file is
// rewritten (temporary file + rename, so it is never half written) after
// every request that may have changed the state. Not kept: request counters,
// pending faults, webhook deliveries in flight and CLI sessions (a `stripe
// listen` re-authorizes by itself).

const stateVersion = 1

type stateFile struct {
	Version        int               `json:"version"`
	Seq            int64             `json:"seq"`
	Customers      []stCustomer      `json:"customers"`
	Products       []stProduct       `json:"products"`
	Prices         []stPrice         `json:"prices"`
	Coupons        []stCoupon        `json:"coupons"`
	Promos         []stPromo         `json:"promotion_codes"`
	Discounts      []stDiscount      `json:"discounts"`
	Subs           []stSub           `json:"subscriptions"`
	Invoices       []stInvoice       `json:"invoices"`
	InvoiceItems   []stInvoiceItem   `json:"invoice_items"`
	PaymentMethods []stPaymentMethod `json:"payment_methods"`
	Clocks         []stClock         `json:"test_clocks"`
	Events         []stEvent         `json:"events"`
	CLISecrets     map[string]string `json:"cli_secrets"`
	Idempotency    map[string]stIdem `json:"idempotency"`
}

type stCustomer struct {
	ID, Email, Name, Description, Phone, Clock, Currency, InvoicePrefix string
	Seq, Created, NextInvoice                                           int64
	Metadata                                                            map[string]string
	Decline                                                             bool
	Discount                                                            string
}
type stProduct struct {
	ID, Name, Description string
	Seq, Created, Updated int64
	Active                bool
	Metadata              map[string]string
}
type stPrice struct {
	ID, Currency, Product, Nickname, LookupKey string
	Seq, Created, UnitAmount                   int64
	Recurring, Active                          bool
	Metadata                                   map[string]string
}
type stCoupon struct {
	ID, Currency, Duration, Name                                                        string
	Seq, Created, PercentBP, AmountOff, Months, MaxRedemptions, RedeemBy, TimesRedeemed int64
	AppliesTo                                                                           []string
	Metadata                                                                            map[string]string
	Deleted                                                                             bool
}
type stPromo struct {
	ID, Code, Coupon, Customer, MinAmountCurrency                     string
	Seq, Created, ExpiresAt, MaxRedemptions, TimesRedeemed, MinAmount int64
	Active, FirstTime                                                 bool
	CurrencyOptions                                                   map[string]int64
	Metadata                                                          map[string]string
}
type stDiscount struct {
	ID, Coupon, Customer, Promo, Subscription string
	Start, End                                int64
	Used                                      bool
}
type stSubItem struct {
	ID                string
	Quantity, Created int64
	Price             string
	Metadata          map[string]string
}
type stSub struct {
	ID, Customer, Status, Discount, LatestInvoice, CancelComment, CancelFeedback, Description, Currency string
	Seq, Created, Anchor, CanceledAt, EndedAt                                                           int64
	Period                                                                                              int
	Items                                                                                               []stSubItem
	Metadata                                                                                            map[string]string
}
type stDiscAmt struct {
	Amount   int64
	Discount string
}
type stLine struct {
	ID, Currency, Price, Product, SubItem, Description, InvoiceItem string
	Amount, Quantity, PeriodStart, PeriodEnd                        int64
	DiscountAmounts                                                 []stDiscAmt
}
type stInvoice struct {
	ID, Customer, Subscription, Status, Currency, BillingReason, Discount, Number, Clock, Description string
	Seq, Created, AttemptCount, AmountDue, AmountPaid, AmountRemaining, Subtotal, Total               int64
	PeriodStart, PeriodEnd, FinalizedAt, PaidAt, NextAttempt                                          int64
	Paid, Attempted, PayDecline                                                                       bool
	TotalDiscounts                                                                                    []stDiscAmt
	Lines                                                                                             []stLine
	SubMetadata                                                                                       map[string]string
}
type stInvoiceItem struct {
	ID, Customer, Currency, Description, Invoice string
	Seq, Created, Amount                         int64
	Metadata                                     map[string]string
}
type stPaymentMethod struct {
	ID, Customer, Brand, Last4, Funding string
	Created                             int64
	Decline                             bool
}
type stClock struct {
	ID, Name, Status     string
	Seq, Created, Frozen int64
}
type stEvent struct {
	ID, Type     string
	Seq, Created int64
	Body         json.RawMessage
}
type stIdem struct {
	Fingerprint, RequestID string
	Status                 int
	Body                   json.RawMessage
	Created                time.Time
}

// Open builds a simulator (New) and, with Options.StatePath, loads the state
// saved there (a missing file is an empty world) and keeps saving it.
func Open(opts Options) (*Server, error) {
	s := New(opts)
	if opts.StatePath == "" {
		return s, nil
	}
	b, err := os.ReadFile(opts.StatePath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		s.Close()
		return nil, fmt.Errorf("stripe simulator state %s: %w", opts.StatePath, err)
	default:
		var st stateFile
		if err := json.Unmarshal(b, &st); err != nil {
			s.Close()
			return nil, fmt.Errorf("stripe simulator state %s is not readable (delete it, or `make reset`, to start over): %w", opts.StatePath, err)
		}
		if st.Version != stateVersion {
			s.Close()
			return nil, fmt.Errorf("stripe simulator state %s has version %d, this simulator reads %d (delete it, or `make reset`)", opts.StatePath, st.Version, stateVersion)
		}
		s.mu.Lock()
		s.restore(&st)
		s.mu.Unlock()
	}
	s.persist = true
	return s, nil
}

// saveLocked writes the state file. Caller holds s.mu.
func (s *Server) saveLocked() {
	if !s.persist {
		return
	}
	b, err := json.Marshal(s.snapshot())
	if err == nil {
		err = writeFileAtomic(s.opts.StatePath, b)
	}
	if err != nil {
		s.log.Error("stripesim: saving the state failed", "path", s.opts.StatePath, "err", err)
	}
}

func writeFileAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func discAmtsOut(das []discAmt) []stDiscAmt {
	out := make([]stDiscAmt, 0, len(das))
	for _, d := range das {
		out = append(out, stDiscAmt{Amount: d.amount, Discount: d.discount})
	}
	return out
}

func discAmtsIn(das []stDiscAmt) []discAmt {
	var out []discAmt
	for _, d := range das {
		out = append(out, discAmt{amount: d.Amount, discount: d.Discount})
	}
	return out
}

func discID(d *discount) string {
	if d == nil {
		return ""
	}
	return d.ID
}

// snapshot copies the state. Caller holds s.mu.
func (s *Server) snapshot() *stateFile {
	st := &stateFile{Version: stateVersion, Seq: s.seq, CLISecrets: map[string]string{}, Idempotency: map[string]stIdem{}}
	coupons := map[string]*coupon{}
	discounts := map[string]*discount{}
	addDisc := func(d *discount) {
		if d != nil {
			discounts[d.ID] = d
			coupons[d.coupon.ID] = d.coupon
		}
	}
	for _, cp := range s.coupons {
		coupons[cp.ID] = cp
	}
	for _, d := range s.discounts {
		addDisc(d)
	}
	for _, cu := range s.customers {
		addDisc(cu.discount)
		st.Customers = append(st.Customers, stCustomer{ID: cu.ID, Email: cu.email, Name: cu.name, Description: cu.description,
			Phone: cu.phone, Clock: cu.clock, Currency: cu.currency, InvoicePrefix: cu.invoicePrefix, Seq: cu.seq,
			Created: cu.created, NextInvoice: cu.nextInvoice, Metadata: cu.metadata, Decline: cu.decline, Discount: discID(cu.discount)})
	}
	for _, p := range s.products {
		st.Products = append(st.Products, stProduct{ID: p.ID, Name: p.name, Description: p.description, Seq: p.seq,
			Created: p.created, Updated: p.updated, Active: p.active, Metadata: p.metadata})
	}
	for _, p := range s.prices {
		st.Prices = append(st.Prices, stPrice{ID: p.ID, Currency: p.currency, Product: p.product, Nickname: p.nickname,
			LookupKey: p.lookupKey, Seq: p.seq, Created: p.created, UnitAmount: p.unitAmount, Recurring: p.recurring,
			Active: p.active, Metadata: p.metadata})
	}
	for _, pc := range s.promos {
		coupons[pc.coupon.ID] = pc.coupon
		st.Promos = append(st.Promos, stPromo{ID: pc.ID, Code: pc.code, Coupon: pc.coupon.ID, Customer: pc.customer,
			MinAmountCurrency: pc.minAmountCurrency, Seq: pc.seq, Created: pc.created, ExpiresAt: pc.expiresAt,
			MaxRedemptions: pc.maxRedemptions, TimesRedeemed: pc.timesRedeemed, MinAmount: pc.minAmount, Active: pc.active,
			FirstTime: pc.firstTime, CurrencyOptions: pc.currencyOptions, Metadata: pc.metadata})
	}
	for _, sub := range s.subs {
		addDisc(sub.discount)
		ss := stSub{ID: sub.ID, Customer: sub.customer, Status: sub.status, Discount: discID(sub.discount),
			LatestInvoice: sub.latestInvoice, CancelComment: sub.cancelComment, CancelFeedback: sub.cancelFeedbk,
			Description: sub.description, Currency: sub.currency, Seq: sub.seq, Created: sub.created, Anchor: sub.anchor,
			CanceledAt: sub.canceledAt, EndedAt: sub.endedAt, Period: sub.period, Metadata: sub.metadata}
		for _, it := range sub.items {
			ss.Items = append(ss.Items, stSubItem{ID: it.ID, Quantity: it.quantity, Created: it.created, Price: it.price, Metadata: it.metadata})
		}
		st.Subs = append(st.Subs, ss)
	}
	for _, in := range s.invoices {
		addDisc(in.discount)
		si := stInvoice{ID: in.ID, Customer: in.customer, Subscription: in.subscription, Status: in.status, Currency: in.currency,
			BillingReason: in.billingReason, Discount: discID(in.discount), Number: in.number, Clock: in.clock,
			Description: in.description, Seq: in.seq, Created: in.created, AttemptCount: in.attemptCount, AmountDue: in.amountDue,
			AmountPaid: in.amountPaid, AmountRemaining: in.amountRemaining, Subtotal: in.subtotal, Total: in.total,
			PeriodStart: in.periodStart, PeriodEnd: in.periodEnd, FinalizedAt: in.finalizedAt, PaidAt: in.paidAt,
			NextAttempt: in.nextAttempt, Paid: in.paid, Attempted: in.attempted, PayDecline: in.payDecline,
			TotalDiscounts: discAmtsOut(in.totalDiscounts), SubMetadata: in.subMetadata}
		for _, l := range in.lines {
			si.Lines = append(si.Lines, stLine{ID: l.ID, Currency: l.currency, Price: l.price, Product: l.product, SubItem: l.subItem,
				Description: l.description, InvoiceItem: l.invoiceItem, Amount: l.amount, Quantity: l.quantity,
				PeriodStart: l.periodStart, PeriodEnd: l.periodEnd, DiscountAmounts: discAmtsOut(l.discountAmounts)})
		}
		st.Invoices = append(st.Invoices, si)
	}
	for _, d := range discounts {
		st.Discounts = append(st.Discounts, stDiscount{ID: d.ID, Coupon: d.coupon.ID, Customer: d.customer, Promo: d.promo,
			Subscription: d.subscription, Start: d.start, End: d.end, Used: d.used})
	}
	for _, cp := range coupons {
		st.Coupons = append(st.Coupons, stCoupon{ID: cp.ID, Currency: cp.currency, Duration: cp.duration, Name: cp.name,
			Seq: cp.seq, Created: cp.created, PercentBP: cp.percentBP, AmountOff: cp.amountOff, Months: cp.months,
			MaxRedemptions: cp.maxRedemptions, RedeemBy: cp.redeemBy, TimesRedeemed: cp.timesRedeemed,
			AppliesTo: cp.appliesTo, Metadata: cp.metadata, Deleted: cp.deleted})
	}
	for _, ii := range s.invoiceItems {
		st.InvoiceItems = append(st.InvoiceItems, stInvoiceItem{ID: ii.ID, Customer: ii.customer, Currency: ii.currency,
			Description: ii.description, Invoice: ii.invoice, Seq: ii.seq, Created: ii.created, Amount: ii.amount, Metadata: ii.metadata})
	}
	for _, pm := range s.paymentMethods {
		st.PaymentMethods = append(st.PaymentMethods, stPaymentMethod{ID: pm.ID, Customer: pm.customer, Brand: pm.card.brand,
			Last4: pm.card.last4, Funding: pm.card.funding, Created: pm.created, Decline: pm.decline})
	}
	for _, tc := range s.clocks {
		st.Clocks = append(st.Clocks, stClock{ID: tc.ID, Name: tc.name, Status: tc.status, Seq: tc.seq, Created: tc.created, Frozen: tc.frozen})
	}
	for _, ev := range s.events {
		st.Events = append(st.Events, stEvent{ID: ev.ID, Type: ev.typ, Seq: ev.seq, Created: ev.created, Body: ev.body})
	}
	s.cli.mu.Lock()
	for k, v := range s.cli.secrets {
		st.CLISecrets[k] = v
	}
	s.cli.mu.Unlock()
	s.idem.mu.Lock()
	for k, e := range s.idem.m {
		if e.done {
			st.Idempotency[k] = stIdem{Fingerprint: e.fp, RequestID: e.reqID, Status: e.status, Body: e.body, Created: e.created}
		}
	}
	s.idem.mu.Unlock()
	return st
}

// restore replaces the state with st. Caller holds s.mu.
func (s *Server) restore(st *stateFile) {
	s.seq = st.Seq
	coupons := map[string]*coupon{}
	for _, c := range st.Coupons {
		cp := &coupon{ID: c.ID, currency: c.Currency, duration: c.Duration, name: c.Name, seq: c.Seq, created: c.Created,
			percentBP: c.PercentBP, amountOff: c.AmountOff, months: c.Months, maxRedemptions: c.MaxRedemptions,
			redeemBy: c.RedeemBy, timesRedeemed: c.TimesRedeemed, appliesTo: c.AppliesTo, metadata: c.Metadata, deleted: c.Deleted}
		coupons[cp.ID] = cp
		if !cp.deleted {
			s.coupons[cp.ID] = cp
		}
	}
	for _, d := range st.Discounts {
		s.discounts[d.ID] = &discount{ID: d.ID, coupon: coupons[d.Coupon], customer: d.Customer, promo: d.Promo,
			subscription: d.Subscription, start: d.Start, end: d.End, used: d.Used}
	}
	for _, c := range st.Customers {
		s.customers[c.ID] = &customer{ID: c.ID, email: c.Email, name: c.Name, description: c.Description, phone: c.Phone,
			clock: c.Clock, currency: c.Currency, invoicePrefix: c.InvoicePrefix, seq: c.Seq, created: c.Created,
			nextInvoice: c.NextInvoice, metadata: c.Metadata, decline: c.Decline, discount: s.discounts[c.Discount]}
	}
	for _, p := range st.Products {
		s.products[p.ID] = &product{ID: p.ID, name: p.Name, description: p.Description, seq: p.Seq, created: p.Created,
			updated: p.Updated, active: p.Active, metadata: p.Metadata}
	}
	for _, p := range st.Prices {
		s.prices[p.ID] = &price{ID: p.ID, currency: p.Currency, product: p.Product, nickname: p.Nickname, lookupKey: p.LookupKey,
			seq: p.Seq, created: p.Created, unitAmount: p.UnitAmount, recurring: p.Recurring, active: p.Active, metadata: p.Metadata}
	}
	for _, p := range st.Promos {
		s.promos[p.ID] = &promoCode{ID: p.ID, code: p.Code, coupon: coupons[p.Coupon], customer: p.Customer,
			minAmountCurrency: p.MinAmountCurrency, seq: p.Seq, created: p.Created, expiresAt: p.ExpiresAt,
			maxRedemptions: p.MaxRedemptions, timesRedeemed: p.TimesRedeemed, minAmount: p.MinAmount, active: p.Active,
			firstTime: p.FirstTime, currencyOptions: p.CurrencyOptions, metadata: p.Metadata}
	}
	for _, ss := range st.Subs {
		sub := &subscription{ID: ss.ID, customer: ss.Customer, status: ss.Status, discount: s.discounts[ss.Discount],
			latestInvoice: ss.LatestInvoice, cancelComment: ss.CancelComment, cancelFeedbk: ss.CancelFeedback,
			description: ss.Description, currency: ss.Currency, seq: ss.Seq, created: ss.Created, anchor: ss.Anchor,
			canceledAt: ss.CanceledAt, endedAt: ss.EndedAt, period: ss.Period, metadata: ss.Metadata}
		for _, it := range ss.Items {
			sub.items = append(sub.items, &subItem{ID: it.ID, quantity: it.Quantity, created: it.Created, price: it.Price, metadata: it.Metadata})
		}
		s.subs[sub.ID] = sub
	}
	for _, si := range st.Invoices {
		in := &invoice{ID: si.ID, customer: si.Customer, subscription: si.Subscription, status: si.Status, currency: si.Currency,
			billingReason: si.BillingReason, discount: s.discounts[si.Discount], number: si.Number, clock: si.Clock,
			description: si.Description, seq: si.Seq, created: si.Created, attemptCount: si.AttemptCount, amountDue: si.AmountDue,
			amountPaid: si.AmountPaid, amountRemaining: si.AmountRemaining, subtotal: si.Subtotal, total: si.Total,
			periodStart: si.PeriodStart, periodEnd: si.PeriodEnd, finalizedAt: si.FinalizedAt, paidAt: si.PaidAt,
			nextAttempt: si.NextAttempt, paid: si.Paid, attempted: si.Attempted, payDecline: si.PayDecline,
			totalDiscounts: discAmtsIn(si.TotalDiscounts), subMetadata: si.SubMetadata}
		for _, l := range si.Lines {
			in.lines = append(in.lines, &invoiceLine{ID: l.ID, currency: l.Currency, price: l.Price, product: l.Product,
				subItem: l.SubItem, description: l.Description, invoiceItem: l.InvoiceItem, amount: l.Amount, quantity: l.Quantity,
				periodStart: l.PeriodStart, periodEnd: l.PeriodEnd, discountAmounts: discAmtsIn(l.DiscountAmounts)})
		}
		s.invoices[in.ID] = in
	}
	for _, ii := range st.InvoiceItems {
		s.invoiceItems[ii.ID] = &invoiceItem{ID: ii.ID, customer: ii.Customer, currency: ii.Currency, description: ii.Description,
			invoice: ii.Invoice, seq: ii.Seq, created: ii.Created, amount: ii.Amount, metadata: ii.Metadata}
	}
	for _, pm := range st.PaymentMethods {
		s.paymentMethods[pm.ID] = &paymentMethod{ID: pm.ID, customer: pm.Customer, created: pm.Created, decline: pm.Decline,
			card: testCard{brand: pm.Brand, last4: pm.Last4, funding: pm.Funding}}
	}
	for _, c := range st.Clocks {
		s.clocks[c.ID] = &testClock{ID: c.ID, name: c.Name, status: c.Status, seq: c.Seq, created: c.Created, frozen: c.Frozen}
	}
	sort.Slice(st.Events, func(i, j int) bool { return st.Events[i].Seq < st.Events[j].Seq })
	for _, e := range st.Events {
		ev := &event{ID: e.ID, typ: e.Type, seq: e.Seq, created: e.Created, body: e.Body}
		s.events = append(s.events, ev)
		s.eventByID[ev.ID] = ev
	}
	s.cli.mu.Lock()
	for k, v := range st.CLISecrets {
		s.cli.secrets[k] = v
	}
	s.cli.mu.Unlock()
	s.idem.mu.Lock()
	for k, e := range st.Idempotency {
		s.idem.m[k] = &idemEntry{fp: e.Fingerprint, done: true, status: e.Status, body: e.Body, reqID: e.RequestID, created: e.Created}
	}
	s.idem.mu.Unlock()
}
