package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/benchkit"
	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/billing-adapter/billing-adapter/internal/redisstore"
	"github.com/oklog/ulid/v2"
	"github.com/redis/go-redis/v9"
)

// Memory is Redis memory per promo code and per redemption, measured on a
// fresh redis-server with the real store code paths run in-process
// (promo.Catalog.Create, promo.Redeemer.Apply and promo.Observer.InvoicePaid
// on redisstore, with a Stripe stand-in that answers at once).
type Memory struct {
	Codes       int `json:"codes"`
	Redemptions int `json:"redemptions"`
	// RedemptionCodes is how many codes the redemptions are spread over.
	RedemptionCodes int `json:"redemption_codes"`
	// Per promo code: MEMORY USAGE of its hash plus its share of the
	// catalog indexes; and INFO used_memory delta / codes.
	CodeKeyBytes  float64 `json:"code_memory_usage_bytes"`
	CodeUsedBytes float64 `json:"code_used_memory_bytes"`
	// Per redemption as an apply leaves it (ledger record, customer,
	// subscription and discount indexes, ledger entry, subscription claim).
	RedemptionKeyBytes  float64 `json:"redemption_memory_usage_bytes"`
	RedemptionUsedBytes float64 `json:"redemption_used_memory_bytes"`
	// Added by its first paid invoice (invoice ID in the counted set,
	// record grows, customer marked paid).
	InvoiceKeyBytes  float64 `json:"first_invoice_memory_usage_bytes"`
	InvoiceUsedBytes float64 `json:"first_invoice_used_memory_bytes"`
	// Where the bytes go: MEMORY USAGE per kind of key, per code and per
	// redemption (e.g. "code hash", "catalog indexes"; "ledger records",
	// "ledger order", "customer index", ... "subscription claims").
	CodeBreakdown       map[string]float64 `json:"code_breakdown_bytes"`
	RedemptionBreakdown map[string]float64 `json:"redemption_breakdown_bytes"`
	Elapsed             float64            `json:"elapsed_seconds"`
}

// breakdown is MEMORY USAGE per kind of key, divided by n.
func breakdown(ctx context.Context, rdb *redis.Client, kinds map[string][]string, n int) (map[string]float64, error) {
	out := make(map[string]float64, len(kinds))
	for kind, keys := range kinds {
		b, err := memoryUsage(ctx, rdb, keys)
		if err != nil {
			return nil, err
		}
		out[kind] = float64(b) / float64(n)
	}
	return out, nil
}

// fakeStripe answers the catalog's and the redeemer's Stripe calls at once,
// with IDs shaped like Stripe's.
type fakeStripe struct {
	promo.Gateway
	promo.BillingGateway
	mu     sync.Mutex
	coupon map[string]string // promotion code ID -> coupon ID
	price  string
	now    time.Time
}

func stripeID(prefix string, n int) string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return prefix + string(b)
}

func (f *fakeStripe) CreateCoupon(_ context.Context, c promo.CouponSpec, _ string) (string, error) {
	return c.ID, nil
}

func (f *fakeStripe) CreatePromotionCode(_ context.Context, p promo.PromotionCodeSpec, _ string) (string, error) {
	id := stripeID("promo_", 24)
	f.mu.Lock()
	f.coupon[id] = p.CouponID
	f.mu.Unlock()
	return id, nil
}

func (f *fakeStripe) subscription(id string) *promo.Subscription {
	return &promo.Subscription{ID: id, Customer: "cus_" + strings.TrimPrefix(id, "sub_")[:14], Status: "active",
		Currency: "usd", PriceIDs: []string{f.price}, CurrentPeriodStart: f.now, CurrentPeriodEnd: f.now.AddDate(0, 1, 0),
		LatestInvoicePaid: true}
}

func (f *fakeStripe) GetSubscription(_ context.Context, id string) (*promo.Subscription, error) {
	return f.subscription(id), nil
}

func (f *fakeStripe) ApplyPromotionCode(_ context.Context, sub, promotionCode string, md map[string]string, _ string) (*promo.Subscription, error) {
	s := f.subscription(sub)
	f.mu.Lock()
	coupon := f.coupon[promotionCode]
	f.mu.Unlock()
	s.Discount = &promo.Discount{ID: stripeID("di_", 24), CouponID: coupon, PromotionCodeID: promotionCode, Start: f.now}
	s.Metadata = md
	return s, nil
}

// usedMemory is INFO memory used_memory.
func usedMemory(ctx context.Context, rdb *redis.Client) (int64, error) {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	n, ok := infoField(info, "used_memory")
	if !ok {
		return 0, fmt.Errorf("no used_memory in INFO memory")
	}
	return n, nil
}

// memoryUsage sums MEMORY USAGE key SAMPLES 0 (exact) over keys, pipelined.
func memoryUsage(ctx context.Context, rdb *redis.Client, keys []string) (int64, error) {
	var total int64
	for start := 0; start < len(keys); start += 1000 {
		part := keys[start:min(start+1000, len(keys))]
		cmds := make([]*redis.IntCmd, len(part))
		if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range part {
				cmds[i] = p.MemoryUsage(ctx, k, 0)
			}
			return nil
		}); err != nil && err != redis.Nil {
			return 0, err
		}
		for _, c := range cmds {
			total += c.Val()
		}
	}
	return total, nil
}

// idempotencyRecordBytes is the mean MEMORY USAGE of the idempotency
// records in Redis (ba:{idem:H}), over at most 2,000 of them.
func idempotencyRecordBytes(ctx context.Context, nodes []*redis.Client) (float64, int, error) {
	var total int64
	n := 0
	for _, rdb := range nodes {
		var keys []string
		iter := rdb.Scan(ctx, 0, "ba:{idem:*", 1000).Iterator()
		for iter.Next(ctx) && len(keys) < 2000 {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			return 0, 0, err
		}
		sum, err := memoryUsage(ctx, rdb, keys)
		if err != nil {
			return 0, 0, err
		}
		total, n = total+sum, n+len(keys)
	}
	if n == 0 {
		return 0, 0, nil
	}
	return float64(total) / float64(n), n, nil
}

// measureMemory runs on its own fresh redis-server at url.
func measureMemory(ctx context.Context, url string, codes, redemptions, conc int, progress io.Writer) (*Memory, error) {
	start := time.Now()
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	opt.PoolSize = conc * 2
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		return nil, err
	}
	store := redisstore.New(rdb, nil)
	log := slog.New(slog.DiscardHandler)
	now := time.Now().UTC()
	fake := &fakeStripe{coupon: map[string]string{}, price: stripeID("price_", 24), now: now}
	catalog := &promo.Catalog{Store: store, Gateway: fake, Clock: promo.SystemClock{}, Log: log,
		NewID: func() string { return "pc_" + ulid.Make().String() }}
	redeemer := &promo.Redeemer{Store: store, Stripe: fake, Clock: promo.SystemClock{}, Log: log,
		NewID: func() string { return "rd_" + ulid.Make().String() }, Lease: 2 * time.Minute, LockTTL: time.Minute}
	reconciler := &promo.Observer{Store: store, Catalog: catalog, Log: log}
	m := &Memory{Codes: codes, Redemptions: redemptions, RedemptionCodes: min(100, codes)}
	catalogKeys := []string{"ba:{catalog}:list:active", "ba:{catalog}:list:inactive", "ba:{catalog}:list:archived"}

	// Codes: as POST /v1/promo_codes makes them (10% off forever, a stock,
	// one metadata key), each with its own request key.
	m0, err := usedMemory(ctx, rdb)
	if err != nil {
		return nil, err
	}
	ids := make([]string, codes)
	stock := int64(redemptions + 1)
	fmt.Fprintf(progress, "memory: creating %d promo codes...\n", codes)
	if err := benchkit.Parallel(codes, conc, func(i int) error {
		p, err := catalog.Create(ctx, promo.CreateInput{Code: fmt.Sprintf("MEM%07d", i), PromoType: promo.Percentage,
			AmountOff: "10", Duration: promo.Forever, Stock: &stock, Metadata: map[string]string{"campaign": "bench"}},
			"bench-admin\x00"+stripeID("", 36))
		if err == nil {
			ids[i] = p.ID
		}
		return err
	}); err != nil {
		return nil, err
	}
	m1, err := usedMemory(ctx, rdb)
	if err != nil {
		return nil, err
	}
	codeKeys := make([]string, 0, codes)
	textKeys := make([]string, 0, codes)
	for i, id := range ids {
		codeKeys = append(codeKeys, "ba:{"+id+"}:code")
		textKeys = append(textKeys, fmt.Sprintf("ba:{ct:MEM%07d}", i))
	}
	usage, err := memoryUsage(ctx, rdb, slices.Concat(codeKeys, textKeys, catalogKeys))
	if err != nil {
		return nil, err
	}
	m.CodeKeyBytes, m.CodeUsedBytes = float64(usage)/float64(codes), float64(m1-m0)/float64(codes)
	if m.CodeBreakdown, err = breakdown(ctx, rdb, map[string][]string{"code hash": codeKeys, "code text key": textKeys,
		"catalog lists": catalogKeys}, codes); err != nil {
		return nil, err
	}

	// Redemptions: applies to existing subscriptions of distinct customers,
	// spread evenly over the first RedemptionCodes codes.
	perCode := func(id string) []string {
		return []string{"ba:{" + id + "}:code", "ba:{" + id + "}:rd", "ba:{" + id + "}:cust", "ba:{" + id + "}:subs",
			"ba:{" + id + "}:ledger", "ba:{" + id + "}:disc"}
	}
	var rdKeysBefore []string
	for _, id := range ids[:m.RedemptionCodes] {
		rdKeysBefore = append(rdKeysBefore, perCode(id)...)
	}
	globalKeys := []string{"ba:{catalog}:stripe_sync"}
	for shard := 0; shard < 16; shard++ {
		globalKeys = append(globalKeys, fmt.Sprintf("ba:{sweep:%02d}:due", shard))
	}
	beforeKeys, err := memoryUsage(ctx, rdb, append(rdKeysBefore, globalKeys...))
	if err != nil {
		return nil, err
	}
	subs := make([]string, redemptions)
	results := make([]*promo.ApplyResult, redemptions)
	fmt.Fprintf(progress, "memory: applying %d redemptions...\n", redemptions)
	if err := benchkit.Parallel(redemptions, conc, func(i int) error {
		subs[i] = stripeID("sub_", 24)
		code := fmt.Sprintf("MEM%07d", i%m.RedemptionCodes)
		res, err := redeemer.Apply(ctx, promo.ApplyInput{Subscription: subs[i], Code: code},
			"bench-checkout\x00"+stripeID("", 36))
		results[i] = res
		return err
	}); err != nil {
		return nil, err
	}
	m2, err := usedMemory(ctx, rdb)
	if err != nil {
		return nil, err
	}
	claimKeys := make([]string, redemptions)
	for i, sub := range subs {
		claimKeys[i] = "ba:{" + sub + "}:claim"
	}
	afterKeys, err := memoryUsage(ctx, rdb, slices.Concat(rdKeysBefore, globalKeys, claimKeys))
	if err != nil {
		return nil, err
	}
	m.RedemptionKeyBytes = float64(afterKeys-beforeKeys) / float64(redemptions)
	m.RedemptionUsedBytes = float64(m2-m1) / float64(redemptions)
	kinds := map[string][]string{"subscription claims": claimKeys}
	for _, id := range ids[:m.RedemptionCodes] {
		for kind, suffix := range map[string]string{"ledger records": "rd", "ledger order": "ledger",
			"customer index": "cust", "subscription index": "subs", "discount index": "disc"} {
			kinds[kind] = append(kinds[kind], "ba:{"+id+"}:"+suffix)
		}
	}
	if m.RedemptionBreakdown, err = breakdown(ctx, rdb, kinds, redemptions); err != nil {
		return nil, err
	}

	// First paid invoice of each (invoice.paid with the discount).
	fmt.Fprintf(progress, "memory: counting %d first paid invoices...\n", redemptions)
	invoiceKeys := make([]string, 0, 2*redemptions)
	invoiceIDs := make([]string, redemptions)
	for i, r := range results {
		invoiceIDs[i] = stripeID("in_", 24)
		invoiceKeys = append(invoiceKeys, "ba:{"+r.Code.ID+"}:inv:"+invoiceIDs[i], "ba:{"+r.Subscription.Customer+"}:paid")
	}
	if err := benchkit.Parallel(redemptions, conc, func(i int) error {
		r := results[i]
		d := r.Subscription.Discount
		at := now.AddDate(0, 1, 0)
		return reconciler.InvoicePaid(ctx, promo.InvoicePaidEvent{InvoiceID: invoiceIDs[i],
			Customer: r.Subscription.Customer, Subscription: r.Subscription.ID, Currency: "usd", AmountPaid: 1800,
			DiscountAmount: 200, At: at, Discount: &promo.DiscountEvent{DiscountID: d.ID, CouponID: d.CouponID,
				CouponDuration: promo.Forever, PromotionCodeID: d.PromotionCodeID, Customer: r.Subscription.Customer,
				Subscription: r.Subscription.ID, Start: d.Start, At: at, CouponTimesRedeemed: int64(i/m.RedemptionCodes + 1)}})
	}); err != nil {
		return nil, err
	}
	m3, err := usedMemory(ctx, rdb)
	if err != nil {
		return nil, err
	}
	invKeys, err := memoryUsage(ctx, rdb, slices.Concat(rdKeysBefore, globalKeys, claimKeys, invoiceKeys))
	if err != nil {
		return nil, err
	}
	m.InvoiceKeyBytes = float64(invKeys-afterKeys) / float64(redemptions)
	m.InvoiceUsedBytes = float64(m3-m2) / float64(redemptions)
	m.Elapsed = time.Since(start).Seconds()
	return m, nil
}
