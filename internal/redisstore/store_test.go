package redisstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/billing-adapter/billing-adapter/internal/testutil/redistest"
	"github.com/redis/go-redis/v9"
)

var srv *redistest.Server

func TestMain(m *testing.M) {
	s, stop, err := redistest.StartMain()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv = s
	code := m.Run()
	stop()
	os.Exit(code)
}

// newStore returns a store on a flushed database.
func newStore(t *testing.T) *Store {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	return New(rdb, nil)
}

var now = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
var idSeq atomic.Int64

func draft(t *testing.T, code string) *promo.PromoCode {
	t.Helper()
	stock := int64(5)
	p, err := promo.NewPromoCode(promo.CreateInput{Code: code, PromoType: promo.FlatAmount, AmountOff: "5.50", Currency: "usd",
		Stock: &stock, Metadata: map[string]string{"campaign": "winter"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	// IDs sort by creation, like the ULIDs the service uses.
	p.ID = fmt.Sprintf("pc_%010d", idSeq.Add(1))
	p.CreatedAt, p.UpdatedAt = now, now
	p.Stripe.State = promo.SyncProvisioning
	return p
}

func finish(t *testing.T, s *Store, p *promo.PromoCode) {
	t.Helper()
	p.Stripe = promo.StripeRefs{CouponID: "co_" + p.ID, PromotionCodeID: "promo_" + p.ID, Active: true, State: promo.SyncReady}
	if err := s.FinishCreate(context.Background(), p); err != nil {
		t.Fatal(err)
	}
}

func wantCode(t *testing.T, err error, code promo.Code) {
	t.Helper()
	if promo.CodeOf(err) != code {
		t.Fatalf("want %s, got %v", code, err)
	}
}

func TestCreateRoundTripAndUniqueness(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	p := draft(t, "WINTER")
	got, claim, err := s.BeginCreate(ctx, p, "admin\x00k1", now, time.Minute)
	if err != nil || claim != promo.ClaimNew || got.ID != p.ID {
		t.Fatalf("begin: %v %v %v", got, claim, err)
	}
	finish(t, s, p)

	back, err := s.Get(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if back.Code != "WINTER" || back.AmountOff != 550 || back.Currency != "usd" || back.Stock != 5 ||
		back.Metadata["campaign"] != "winter" || back.Stripe.PromotionCodeID != "promo_"+p.ID || back.Stripe.State != promo.SyncReady ||
		!back.CreatedAt.Equal(now) {
		t.Fatalf("round trip lost data: %+v", back)
	}
	byCode, err := s.GetByCode(ctx, "WINTER")
	if err != nil || byCode.ID != p.ID {
		t.Fatalf("by code: %v %v", byCode, err)
	}
	if _, err := s.Get(ctx, "pc_missing"); !errors.Is(err, promo.ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}

	// Same text, other request, even finished: taken.
	_, _, err = s.BeginCreate(ctx, draft(t, "WINTER"), "admin\x00k2", now, time.Minute)
	wantCode(t, err, promo.CodeConflict)
}

func TestBeginCreateResumeRules(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	first := draft(t, "RESUME")
	if _, _, err := s.BeginCreate(ctx, first, "owner-a", now, time.Minute); err != nil {
		t.Fatal(err)
	}
	first.Stripe.CouponID = "co_1"
	if err := s.SaveStripeRefs(ctx, first.ID, first.Stripe); err != nil {
		t.Fatal(err)
	}

	// The same owner resumes and sees the coupon already made.
	p, claim, err := s.BeginCreate(ctx, draft(t, "RESUME"), "owner-a", now, time.Minute)
	if err != nil || claim != promo.ClaimResume || p.ID != first.ID || p.Stripe.CouponID != "co_1" {
		t.Fatalf("same owner: %+v %v %v", p, claim, err)
	}
	// Another owner while the lease runs: busy (409).
	_, _, err = s.BeginCreate(ctx, draft(t, "RESUME"), "owner-b", now.Add(30*time.Second), time.Minute)
	wantCode(t, err, promo.CodeConflict)
	// Once the owner releases its lease (its request failed), anyone may resume.
	if err := s.ReleaseProvision(ctx, "RESUME", "owner-a"); err != nil {
		t.Fatal(err)
	}
	if p, claim, err := s.BeginCreate(ctx, draft(t, "RESUME"), "owner-c", now.Add(time.Second), time.Minute); err != nil || claim != promo.ClaimResume || p.ID != first.ID {
		t.Fatalf("after release: %+v %v %v", p, claim, err)
	}
	// Releasing someone else's lease does nothing.
	if err := s.ReleaseProvision(ctx, "RESUME", "owner-a"); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.BeginCreate(ctx, draft(t, "RESUME"), "owner-b", now.Add(2*time.Second), time.Minute)
	wantCode(t, err, promo.CodeConflict)
	// Another owner with other terms: taken, even after the lease.
	other := draft(t, "RESUME")
	other.AmountOff = 600
	_, _, err = s.BeginCreate(ctx, other, "owner-b", now.Add(time.Hour), time.Minute)
	wantCode(t, err, promo.CodeConflict)
	// Another owner with the same terms after the lease: takes over.
	p, claim, err = s.BeginCreate(ctx, draft(t, "RESUME"), "owner-b", now.Add(3*time.Minute), time.Minute)
	if err != nil || claim != promo.ClaimResume || p.ID != first.ID || p.Stripe.CouponID != "co_1" {
		t.Fatalf("takeover: %+v %v %v", p, claim, err)
	}
	// Not listed until finished.
	page, err := s.List(ctx, promo.ListFilter{Limit: 10})
	if err != nil || len(page.Data) != 0 {
		t.Fatalf("unfinished code listed: %v %v", page.Data, err)
	}
}

// The record says which Stripe objects exist: a code whose coupon is not made
// yet reads back without one (a resumed create must still make it), whatever
// the coupon's ID would be.
func TestStripeRefsSayWhatExists(t *testing.T) {
	for _, tc := range []struct {
		name            string
		coupon, promoID string // "" = not created; "=" = the code's ID
	}{
		{name: "nothing yet"},
		{name: "coupon with the code's ID", coupon: "="},
		{name: "coupon with another ID", coupon: "co_other"},
		{name: "coupon and promotion code", coupon: "=", promoID: "promo_1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, ctx := newStore(t), context.Background()
			p := draft(t, "REFS")
			if _, _, err := s.BeginCreate(ctx, p, "owner-a", now, time.Minute); err != nil {
				t.Fatal(err)
			}
			want := p.Stripe
			want.CouponID, want.PromotionCodeID = tc.coupon, tc.promoID
			if tc.coupon == "=" {
				want.CouponID = p.ID
			}
			if err := s.SaveStripeRefs(ctx, p.ID, want); err != nil {
				t.Fatal(err)
			}
			for _, read := range []func() (*promo.PromoCode, error){
				func() (*promo.PromoCode, error) { return s.Get(ctx, p.ID) },
				func() (*promo.PromoCode, error) {
					got, _, err := s.BeginCreate(ctx, draft(t, "REFS"), "owner-a", now, time.Minute)
					return got, err
				},
			} {
				got, err := read()
				if err != nil {
					t.Fatal(err)
				}
				if got.Stripe.CouponID != want.CouponID || got.Stripe.PromotionCodeID != want.PromotionCodeID {
					t.Fatalf("coupon %q, promotion code %q; want %q, %q", got.Stripe.CouponID, got.Stripe.PromotionCodeID,
						want.CouponID, want.PromotionCodeID)
				}
			}
		})
	}
}

func TestBeginCreateConcurrentClaimsOneWinner(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	var wins atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			d := draft(t, "RACE")
			d.AmountOff = int64(100 + i) // different terms: no takeover possible
			if _, claim, err := s.BeginCreate(ctx, d, fmt.Sprint("owner", i), now, time.Minute); err == nil && claim == promo.ClaimNew {
				wins.Add(1)
			}
		}(i)
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d requests claimed the same code", wins.Load())
	}
}

func TestListPagingStatusAndArchive(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	var ids []string
	for i := 0; i < 5; i++ {
		p := draft(t, fmt.Sprintf("LIST%d", i))
		if _, _, err := s.BeginCreate(ctx, p, "o", now, time.Minute); err != nil {
			t.Fatal(err)
		}
		finish(t, s, p)
		ids = append(ids, p.ID)
	}
	// Newest first, paged.
	page, err := s.List(ctx, promo.ListFilter{Limit: 2})
	if err != nil || len(page.Data) != 2 || !page.HasMore || page.Data[0].ID != ids[4] || page.Data[1].ID != ids[3] {
		t.Fatalf("page 1: %v %v", page, err)
	}
	page, err = s.List(ctx, promo.ListFilter{Limit: 2, StartingAfter: ids[3]})
	if err != nil || len(page.Data) != 2 || page.Data[0].ID != ids[2] || !page.HasMore {
		t.Fatalf("page 2: %v %v", page, err)
	}
	page, err = s.List(ctx, promo.ListFilter{Limit: 2, StartingAfter: ids[1]})
	if err != nil || len(page.Data) != 1 || page.Data[0].ID != ids[0] || page.HasMore {
		t.Fatalf("last page: %v %v", page, err)
	}

	// Archive one, deactivate another.
	prev, _ := s.Get(ctx, ids[1])
	arch := *prev
	arch.Status = promo.StatusArchived
	if err := s.SaveUpdate(ctx, prev, &arch, false); err != nil {
		t.Fatal(err)
	}
	prev, _ = s.Get(ctx, ids[2])
	inact := *prev
	inact.Status, inact.Stock = promo.StatusInactive, 0
	if err := s.SaveUpdate(ctx, prev, &inact, true); err != nil {
		t.Fatal(err)
	}
	counts := map[promo.Status]int{"": 4, promo.StatusActive: 3, promo.StatusInactive: 1, promo.StatusArchived: 1, promo.StatusAll: 5}
	for st, want := range counts {
		page, err := s.List(ctx, promo.ListFilter{Limit: 100, Status: st})
		if err != nil || len(page.Data) != want {
			t.Errorf("status %q: %d codes, want %d (%v)", st, len(page.Data), want, err)
		}
	}
	if got, _ := s.Get(ctx, ids[2]); got.Stock != 0 || got.Status != promo.StatusInactive {
		t.Fatalf("update not saved: %+v", got)
	}
	// The archived code's text is free again; the old code keeps its record.
	if _, err := s.GetByCode(ctx, "LIST1"); !errors.Is(err, promo.ErrNotFound) {
		t.Fatalf("archived code still indexed: %v", err)
	}
	if _, claim, err := s.BeginCreate(ctx, draft(t, "LIST1"), "o", now, time.Minute); err != nil || claim != promo.ClaimNew {
		t.Fatalf("reuse archived text: %v %v", claim, err)
	}
}

func TestSaveUpdateLeavesStockAloneUnlessChanged(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	p := draft(t, "STOCK")
	if _, _, err := s.BeginCreate(ctx, p, "o", now, time.Minute); err != nil {
		t.Fatal(err)
	}
	finish(t, s, p)
	// A redemption takes a unit behind the admin's back.
	if err := s.rdb.HIncrBy(ctx, codeKey(p.ID), "stock", -1).Err(); err != nil {
		t.Fatal(err)
	}
	n := *p
	n.Metadata = map[string]string{"campaign": "spring"}
	if err := s.SaveUpdate(ctx, p, &n, false); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Get(ctx, p.ID)
	if got.Stock != 4 || got.Metadata["campaign"] != "spring" {
		t.Fatalf("stock %d metadata %v", got.Stock, got.Metadata)
	}
}

func TestLockExcludesAndExpires(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	unlock, err := s.Lock(ctx, "pc_lock", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = s.Lock(ctx, "pc_lock", 5*time.Second)
	wantCode(t, err, promo.CodeConflict)
	if time.Since(start) < lockWait {
		t.Fatal("second lock did not wait for the holder")
	}
	unlock()
	unlock2, err := s.Lock(ctx, "pc_lock", 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	_ = unlock2 // never released: the lease must end by itself
	unlock3, err := s.Lock(ctx, "pc_lock", time.Second)
	if err != nil {
		t.Fatalf("lease did not expire: %v", err)
	}
	unlock3()
}

func TestIdempotencyRecordLifecycle(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	b, err := s.BeginRequest(ctx, "admin\x00k", "fp1", time.Minute)
	if err != nil || b.Outcome != promo.IdempotencyProceed || b.Token == "" {
		t.Fatalf("first: %+v %v", b, err)
	}
	if b2, _ := s.BeginRequest(ctx, "admin\x00k", "fp1", time.Minute); b2.Outcome != promo.IdempotencyInFlight {
		t.Fatalf("concurrent: %+v", b2)
	}
	if b2, _ := s.BeginRequest(ctx, "admin\x00k", "fp2", time.Minute); b2.Outcome != promo.IdempotencyMismatch {
		t.Fatalf("other body: %+v", b2)
	}
	// Other API key, same header value: independent.
	if b2, _ := s.BeginRequest(ctx, "checkout\x00k", "fp1", time.Minute); b2.Outcome != promo.IdempotencyProceed {
		t.Fatalf("scoping: %+v", b2)
	}
	resp := promo.StoredResponse{Status: 201, ContentType: "application/json", Body: []byte(`{"id":"pc_1"}`)}
	if err := s.CompleteRequest(ctx, "admin\x00k", b.Token, resp, time.Hour); err != nil {
		t.Fatal(err)
	}
	r, _ := s.BeginRequest(ctx, "admin\x00k", "fp1", time.Minute)
	if r.Outcome != promo.IdempotencyReplay || r.Response.Status != 201 || string(r.Response.Body) != `{"id":"pc_1"}` ||
		r.Response.ContentType != "application/json" {
		t.Fatalf("replay: %+v", r)
	}
	if ttl := s.rdb.PTTL(ctx, idemKey("admin\x00k")).Val(); ttl < 59*time.Minute || ttl > time.Hour {
		t.Fatalf("ttl %v, want the configured hour", ttl)
	}
	if r, _ := s.BeginRequest(ctx, "admin\x00k", "fp2", time.Minute); r.Outcome != promo.IdempotencyMismatch {
		t.Fatalf("finished, other body: %+v", r)
	}
}

func TestIdempotencyLeaseAndAbandon(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	b, _ := s.BeginRequest(ctx, "a\x00crash", "fp", 150*time.Millisecond)
	time.Sleep(300 * time.Millisecond) // the process "crashed": nobody completes
	b2, err := s.BeginRequest(ctx, "a\x00crash", "fp", time.Minute)
	if err != nil || b2.Outcome != promo.IdempotencyProceed {
		t.Fatalf("after lease: %+v %v", b2, err)
	}
	// The crashed attempt's late completion must not overwrite the new one.
	_ = s.CompleteRequest(ctx, "a\x00crash", b.Token, promo.StoredResponse{Status: 200, Body: []byte("stale")}, time.Hour)
	if r, _ := s.BeginRequest(ctx, "a\x00crash", "fp", time.Minute); r.Outcome != promo.IdempotencyInFlight {
		t.Fatalf("stale token completed the record: %+v", r)
	}
	if err := s.AbandonRequest(ctx, "a\x00crash", b2.Token); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.BeginRequest(ctx, "a\x00crash", "fp", time.Minute); r.Outcome != promo.IdempotencyProceed {
		t.Fatalf("after abandon: %+v", r)
	}
}

func TestRedisDownIsUnavailable(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	s := New(rdb, nil)
	_, err := s.Get(context.Background(), "pc_x")
	wantCode(t, err, promo.CodeUnavailable)
	wantCode(t, s.Ping(context.Background()), promo.CodeUnavailable)
	_, err = s.BeginRequest(context.Background(), "k", "fp", time.Second)
	wantCode(t, err, promo.CodeUnavailable)
}

// Only the current record version is read: a record of another version (or
// none) is an error, never a guess.
func TestCodeRecordOfAnotherVersionIsRefused(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	for _, doc := range []string{
		`{"id":"pc_old","code":"OLD10","promo_type":"percentage","amount_off":1000,"status":"inactive"}`,
		`{"v":1,"c":"OLD10","t":"percentage","a":1000,"d":"once","ct":1,"ut":1}`,
	} {
		if err := s.rdb.HSet(ctx, codeKey("pc_old"), "doc", doc, "status", "inactive", "state", "ready").Err(); err != nil {
			t.Fatal(err)
		}
		if p, err := s.Get(ctx, "pc_old"); err == nil || errors.Is(err, promo.ErrNotFound) {
			t.Fatalf("%s read as %+v, %v", doc, p, err)
		}
	}
}

// A large answer is stored compressed and replayed byte for byte; the
// record keeps no attempt token once done.
func TestIdempotencyRecordStoresLargeBodiesCompressed(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	b, err := s.BeginRequest(ctx, "checkout\x00big", "fp", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"id":"sub_1","object":"subscription","items":[` +
		strings.Repeat(`{"price":"price_1Pmonthly","quantity":1,"metadata":{"campaign":"spring"}},`, 20) + `{}]}`)
	resp := promo.StoredResponse{Status: 200, ContentType: "application/json", Body: body}
	if err := s.CompleteRequest(ctx, "checkout\x00big", b.Token, resp, time.Hour); err != nil {
		t.Fatal(err)
	}
	stored := s.rdb.Get(ctx, idemKey("checkout\x00big")).Val()
	if len(stored) >= len(body)/2 {
		t.Fatalf("stored %d bytes of a %d-byte answer, want it compressed", len(stored), len(body))
	}
	if strings.Contains(stored, b.Token) {
		t.Fatal("the done record keeps the attempt token")
	}
	r, err := s.BeginRequest(ctx, "checkout\x00big", "fp", time.Minute)
	if err != nil || r.Outcome != promo.IdempotencyReplay || !bytes.Equal(r.Response.Body, body) || r.Response.Status != 200 {
		t.Fatalf("replay: %+v %v", r, err)
	}
}

// A record of the previous layout (a hash) is still read until it expires:
// replayed, refused for another body, in flight while running.
func TestIdempotencyReadsThePreviousLayout(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	old := legacyIdemKey("admin\x00old")
	s.rdb.HSet(ctx, old, "state", "done", "fp", "fp1", "status", 201, "ctype", "application/json", "body", `{"id":"pc_old"}`)
	r, err := s.BeginRequest(ctx, "admin\x00old", "fp1", time.Minute)
	if err != nil || r.Outcome != promo.IdempotencyReplay || r.Response.Status != 201 || string(r.Response.Body) != `{"id":"pc_old"}` ||
		r.Response.ContentType != "application/json" {
		t.Fatalf("replay of the previous layout: %+v %v", r, err)
	}
	if r, _ := s.BeginRequest(ctx, "admin\x00old", "fp2", time.Minute); r.Outcome != promo.IdempotencyMismatch {
		t.Fatalf("other body: %+v", r)
	}
	running := legacyIdemKey("admin\x00running")
	s.rdb.HSet(ctx, running, "state", "running", "fp", "fp1", "token", "t")
	if r, _ := s.BeginRequest(ctx, "admin\x00running", "fp1", time.Minute); r.Outcome != promo.IdempotencyInFlight {
		t.Fatalf("running in the previous layout: %+v", r)
	}
	if s.rdb.Exists(ctx, idemKey("admin\x00old"), idemKey("admin\x00running")).Val() != 0 {
		t.Fatal("a record of the previous layout was copied into the new one")
	}
}
