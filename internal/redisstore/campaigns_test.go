package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/redis/go-redis/v9"
)

func newCampaign(t *testing.T, s *Store, count int, prefix string) *promo.Campaign {
	t.Helper()
	return newCampaignOnce(t, s, count, prefix, nil)
}

// newCampaignOnce is newCampaign with once_per_customer as given (nil: the
// default).
func newCampaignOnce(t *testing.T, s *Store, count int, prefix string, once *bool) *promo.Campaign {
	t.Helper()
	c, err := promo.NewCampaign(promo.CampaignInput{Name: "cards", Prefix: prefix, Count: int64(count), OncePerCustomer: once,
		Terms: promo.CreateInput{PromoType: promo.Percentage, AmountOff: "10"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	c.ID = fmt.Sprintf("cmp_%010d", idSeq.Add(1))
	c.CreatedAt, c.UpdatedAt = now, now
	c.Terms.Stripe = promo.StripeRefs{CouponID: c.ID, State: promo.SyncReady}
	if err := s.CreateCampaign(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return c
}

// generateAll runs steps as the domain's worker does, until done.
func generateAll(t *testing.T, s *Store, c *promo.Campaign, owner string, draw func(int) ([]string, error)) {
	t.Helper()
	ctx := context.Background()
	for {
		ok, err := s.LeaseGeneration(ctx, c.ID, owner, time.Minute)
		if err != nil || !ok {
			t.Fatalf("lease: %v %v", ok, err)
		}
		n, err := s.GenerateStep(ctx, c, owner, promo.GenerationBatch, draw)
		if err != nil {
			t.Fatal(err)
		}
		if n >= c.Count {
			return
		}
	}
}

func allCodes(t *testing.T, s *Store, c *promo.Campaign) []string {
	t.Helper()
	var out []string
	if err := s.EachCampaignCode(context.Background(), c, func(cc promo.CampaignCode) error {
		out = append(out, cc.Code)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// textKeys counts the code text keys in Redis.
func textKeys(t *testing.T, s *Store) int {
	t.Helper()
	keys, err := s.rdb.Keys(context.Background(), "ba:{ct:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return len(keys)
}

func TestCampaignGenerationUniqueAcrossCatalog(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	// A promo code holds a text the generator will draw first.
	p := draft(t, "SPTAKEN0000000")
	if _, _, err := s.BeginCreate(ctx, p, "req", now, time.Minute); err != nil {
		t.Fatal(err)
	}
	first := newCampaign(t, s, 3, "SP")
	gen := promo.CodeGenerator{Prefix: "SP", Length: first.CodeLength}
	var drawn atomic.Int64
	// Every draw starts with the promo code's text and a repeat of itself.
	draw := func(n int) ([]string, error) {
		drawn.Add(int64(n))
		fresh, err := gen.Generate(n)
		if n >= 2 {
			fresh[0], fresh[1] = "SPTAKEN0000000", fresh[len(fresh)-1]
		}
		return fresh, err
	}
	generateAll(t, s, first, "w1", draw)
	// A second campaign whose draws begin with the first one's codes.
	firstCodes := allCodes(t, s, first)
	second := newCampaign(t, s, 2500, "SP")
	var reused atomic.Bool
	draw2 := func(n int) ([]string, error) {
		fresh, err := gen.Generate(n)
		if !reused.Swap(true) {
			copy(fresh, firstCodes)
		}
		return fresh, err
	}
	generateAll(t, s, second, "w1", draw2)

	got, err := s.GetCampaign(ctx, second.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Generated != 2500 || got.State != promo.CampaignReady || got.Count != 2500 {
		t.Fatalf("progress generated=%d state=%s", got.Generated, got.State)
	}
	codes := allCodes(t, s, second)
	seen := map[string]bool{"SPTAKEN0000000": true}
	for _, c := range firstCodes {
		seen[c] = true
	}
	if len(firstCodes) != 3 {
		t.Fatalf("first campaign has %d codes, want 3", len(firstCodes))
	}
	for _, c := range codes {
		if seen[c] {
			t.Fatalf("code %s given twice", c)
		}
		seen[c] = true
	}
	if len(codes) != 2500 {
		t.Fatalf("%d codes, want 2500", len(codes))
	}
	// Every text key is a code of exactly one owner: no orphan claims.
	if n := textKeys(t, s); n != 2500+3+1 {
		t.Errorf("%d text keys, want %d", n, 2504)
	}
	// A campaign code's text is taken for promo codes (any case) and is
	// not a promo code.
	dup := draft(t, strings.ToLower(codes[7]))
	dup.Code = promo.NormalizeCode(dup.Code)
	if _, _, err := s.BeginCreate(ctx, dup, "req2", now, time.Minute); promo.CodeOf(err) != promo.CodeConflict {
		t.Errorf("promo code with a campaign code's text: %v", err)
	}
	if _, err := s.GetByCode(ctx, codes[7]); !errors.Is(err, promo.ErrNotFound) {
		t.Errorf("GetByCode of a campaign text: %v", err)
	}
	if q, err := s.GeneratingCampaigns(ctx); err != nil || len(q) != 0 {
		t.Errorf("queue after generation: %v %v", q, err)
	}
}

// failCommit makes the next run of the commit script fail (as if the
// replica died right before it), after its claims were made.
type failCommit struct{ armed atomic.Bool }

func (f *failCommit) DialHook(next redis.DialHook) redis.DialHook { return next }
func (f *failCommit) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (f *failCommit) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		args := cmd.Args()
		if len(args) > 1 && (args[1] == campaignCommitScript.Hash() || strings.HasPrefix(fmt.Sprint(args[1]), "-- campaign_commit")) &&
			f.armed.CompareAndSwap(true, false) {
			cmd.SetErr(errors.New("replica crashed"))
			return cmd.Err()
		}
		return next(ctx, cmd)
	}
}

func TestCampaignGenerationResumesAfterCrash(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	c := newCampaign(t, s, 1500, "")
	crashing := New(redis.NewClient(&redis.Options{Addr: srv.Addr}), nil)
	t.Cleanup(func() { crashing.rdb.Close() })
	hook := &failCommit{}
	crashing.rdb.AddHook(hook)

	gen := promo.CodeGenerator{Length: 12}
	// Replica A makes batch 0, then dies while making batch 1: its claims
	// are in Redis, its commit is not.
	if ok, _ := crashing.LeaseGeneration(ctx, c.ID, "A", time.Minute); !ok {
		t.Fatal("A has no lease")
	}
	if _, err := crashing.GenerateStep(ctx, c, "A", promo.GenerationBatch, gen.Generate); err != nil {
		t.Fatal(err)
	}
	var claimedByA []string
	hook.armed.Store(true)
	if _, err := crashing.GenerateStep(ctx, c, "A", promo.GenerationBatch, func(n int) ([]string, error) {
		codes, err := gen.Generate(n)
		claimedByA = codes
		return codes, err
	}); err == nil {
		t.Fatal("the crashed step succeeded")
	}
	if len(claimedByA) != 500 {
		t.Fatalf("A drew %d, want 500", len(claimedByA))
	}
	// B cannot take over while A's lease runs.
	if ok, err := s.LeaseGeneration(ctx, c.ID, "B", time.Minute); ok || err != nil {
		t.Fatalf("B took a held lease: %v %v", ok, err)
	}
	// A's lease ends (the key expires: removed here rather than waited for).
	s.rdb.Del(ctx, campaignLeaseKey(c.ID))
	var drawnByB atomic.Int64
	generateAll(t, s, c, "B", func(n int) ([]string, error) {
		drawnByB.Add(int64(n))
		return gen.Generate(n)
	})
	if drawnByB.Load() != 0 {
		t.Errorf("B drew %d codes; A's recorded candidates should have completed the batch", drawnByB.Load())
	}
	codes := allCodes(t, s, c)
	if len(codes) != 1500 {
		t.Fatalf("%d codes after resume, want 1500", len(codes))
	}
	seen := map[string]bool{}
	for _, code := range codes {
		if seen[code] {
			t.Fatalf("code %s listed twice", code)
		}
		seen[code] = true
	}
	for _, code := range claimedByA {
		if !seen[code] {
			t.Fatalf("code %s claimed by the crashed step is lost", code)
		}
	}
	if n := textKeys(t, s); n != 1500 {
		t.Errorf("%d text keys, want 1500 (no orphan claim)", n)
	}
	// A, back, cannot write over B's progress.
	if _, err := crashing.GenerateStep(ctx, c, "A", promo.GenerationBatch, gen.Generate); err != nil {
		t.Errorf("a finished campaign's step: %v", err)
	}
	if got := allCodes(t, s, c); len(got) != 1500 {
		t.Errorf("%d codes after A's late step", len(got))
	}
}

func TestCampaignGenerationRacingOwners(t *testing.T) {
	s := newStore(t)
	c := newCampaign(t, s, 4000, "R")
	camps := promo.Campaigns{Store: s, Clock: promo.SystemClock{}, Log: slog.New(slog.DiscardHandler)}
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each worker runs until nothing is left; losers stop at once.
			for {
				err := camps.Generate(context.Background(), fmt.Sprintf("w%d", i))
				if err != nil && promo.CodeOf(err) != promo.CodeConflict {
					t.Error(err)
					return
				}
				got, _ := s.GetCampaign(context.Background(), c.ID)
				if got.State == promo.CampaignReady {
					return
				}
				s.rdb.Del(context.Background(), campaignLeaseKey(c.ID)) // as if the owner died
			}
		}()
	}
	wg.Wait()
	codes := allCodes(t, s, c)
	seen := map[string]bool{}
	for _, code := range codes {
		if seen[code] {
			t.Fatalf("code %s twice", code)
		}
		seen[code] = true
	}
	if len(codes) != 4000 || textKeys(t, s) != 4000 {
		t.Fatalf("%d codes, %d text keys; want 4000 each", len(codes), textKeys(t, s))
	}
}

func TestCampaignCodesPagesAndUpdate(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	c := newCampaign(t, s, 2100, "PG")
	gen := promo.CodeGenerator{Prefix: "PG", Length: c.CodeLength}
	generateAll(t, s, c, "w", gen.Generate)
	codes := allCodes(t, s, c)
	// Two codes redeemed through the reservation script.
	for _, i := range []int{5, 1500} {
		rd := newRD(c.ID, fmt.Sprintf("cus_%d", i), "own")
		rd.UniqueCode = codes[i]
		if _, outcome, err := s.Reserve(ctx, rd, now); err != nil || outcome != promo.Reserved {
			t.Fatalf("reserve %s: %v %v", codes[i], outcome, err)
		}
	}
	var paged []string
	after := ""
	for {
		page, err := s.CampaignCodes(ctx, c, promo.CampaignCodesFilter{Limit: 700, StartingAfter: after})
		if err != nil {
			t.Fatal(err)
		}
		for _, cc := range page.Data {
			paged = append(paged, cc.Code)
		}
		if !page.HasMore {
			break
		}
		after = strings.ToLower(page.Data[len(page.Data)-1].Code)
	}
	if strings.Join(paged, ",") != strings.Join(codes, ",") {
		t.Fatalf("paging gave %d codes, not the %d in order", len(paged), len(codes))
	}
	yes, no := true, false
	red, err := s.CampaignCodes(ctx, c, promo.CampaignCodesFilter{Limit: 10, Redeemed: &yes})
	if err != nil {
		t.Fatal(err)
	}
	if len(red.Data) != 2 || red.Data[0].Code != codes[5] || red.Data[1].Redemption.Customer != "cus_1500" || red.HasMore {
		t.Fatalf("redeemed page %+v", red)
	}
	unred, err := s.CampaignCodes(ctx, c, promo.CampaignCodesFilter{Limit: 6, Redeemed: &no})
	if err != nil {
		t.Fatal(err)
	}
	if len(unred.Data) != 6 || unred.Data[5].Code != codes[6] || !unred.HasMore {
		t.Fatalf("unredeemed page %+v", unred.Data)
	}
	other := newCampaign(t, s, 1, "PG")
	generateAll(t, s, other, "w", gen.Generate)
	if _, err := s.CampaignCodes(ctx, c, promo.CampaignCodesFilter{Limit: 1, StartingAfter: allCodes(t, s, other)[0]}); promo.CodeOf(err) != promo.CodeInvalidRequest {
		t.Errorf("starting_after another campaign's code: %v", err)
	}

	// Update and lists.
	inactive := promo.StatusInactive
	next, err := promo.ApplyCampaignUpdate(c, promo.CampaignUpdate{Status: &inactive, Metadata: map[string]string{"k": "v"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCampaign(ctx, next); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetCampaign(ctx, c.ID)
	if err != nil || got.Terms.Status != promo.StatusInactive || got.Terms.Metadata["k"] != "v" || got.Generated != 2100 ||
		got.Terms.AmountOff != 1000 {
		t.Fatalf("after update %+v %v", got, err)
	}
	list, err := s.ListCampaigns(ctx, promo.ListFilter{Status: promo.StatusActive, Limit: 10})
	if err != nil || len(list.Data) != 1 || list.Data[0].ID != other.ID {
		t.Fatalf("active list %+v %v", list, err)
	}
	all, err := s.ListCampaigns(ctx, promo.ListFilter{Limit: 1})
	if err != nil || len(all.Data) != 1 || all.Data[0].ID != other.ID || !all.HasMore {
		t.Fatalf("first page %+v %v", all, err)
	}
	rest, err := s.ListCampaigns(ctx, promo.ListFilter{Limit: 1, StartingAfter: other.ID})
	if err != nil || len(rest.Data) != 1 || rest.Data[0].ID != c.ID || rest.HasMore {
		t.Fatalf("second page %+v %v", rest, err)
	}
}

// A campaign code is single-use across customers, a redemption that ends
// before a paid invoice gives it back, and one that a paid invoice carried
// keeps it for good; the campaign's status and expiry apply to every code.
func TestCampaignCodeSingleUse(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	c := newCampaign(t, s, 3, "U")
	generateAll(t, s, c, "w", promo.CodeGenerator{Prefix: "U", Length: c.CodeLength}.Generate)
	codes := allCodes(t, s, c)
	lookup := func(text, cus string) *promo.PromoCode {
		t.Helper()
		p, _, err := s.GetByCodeForCustomer(ctx, text, cus)
		if err != nil {
			t.Fatal(err)
		}
		if !p.IsCampaignCode() || p.ID != c.ID || p.Code != text || p.Stripe.CouponID != c.ID {
			t.Fatalf("code %s read as %+v", text, p)
		}
		return p
	}
	if p := lookup(codes[0], "cus_a"); p.Stock != 1 || p.UnlimitedStock || p.Status != promo.StatusActive {
		t.Fatalf("fresh code: stock %d unlimited %v", p.Stock, p.UnlimitedStock)
	}
	reserve := func(text, cus string) (*promo.Redemption, error) {
		rd := newRD(c.ID, cus, "own_"+cus+text)
		rd.UniqueCode = text
		got, _, err := s.Reserve(ctx, rd, now)
		return got, err
	}
	a, err := reserve(codes[0], "cus_a")
	if err != nil || a.UniqueCode != codes[0] {
		t.Fatalf("first redemption: %+v %v", a, err)
	}
	if n := redeemedOf(t, s, c); n != 1 {
		t.Fatalf("redeemed %d, want 1", n)
	}
	if _, err := reserve(codes[0], "cus_b"); promo.CodeOf(err) != promo.CodeCodeExhausted {
		t.Fatalf("second customer on a taken code: %v", err)
	}
	if p := lookup(codes[0], "cus_b"); p.Stock != 0 {
		t.Fatalf("taken code reads stock %d", p.Stock)
	}
	// One code of the campaign per customer.
	if _, err := reserve(codes[1], "cus_a"); promo.CodeOf(err) != promo.CodeAlreadyRedeemedByCustomer {
		t.Fatalf("a customer's second code of the campaign: %v", err)
	}
	// Released before any paid invoice: the code is free again.
	if _, _, err := s.Finish(ctx, c.ID, a.ID, "stripe_refused", now); err != nil {
		t.Fatal(err)
	}
	if p := lookup(codes[0], "cus_b"); p.Stock != 1 {
		t.Fatalf("given-back code reads stock %d", p.Stock)
	}
	if n := redeemedOf(t, s, c); n != 0 {
		t.Fatalf("redeemed %d after the give-back, want 0", n)
	}
	b, err := reserve(codes[0], "cus_b")
	if err != nil {
		t.Fatalf("the given-back code: %v", err)
	}
	mustConfirm(t, s, c.ID, b.ID, "sub_b")
	d := disc("di_"+b.ID, "cus_b", "sub_b", time.Second)
	mustCount(t, s, c.ID, paid("in_b", d, "usd", 100))
	if _, _, err := s.Finish(ctx, c.ID, b.ID, "removed", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := reserve(codes[0], "cus_c"); promo.CodeOf(err) != promo.CodeCodeExhausted {
		t.Fatalf("a code a paid invoice carried, after removal: %v", err)
	}
	if n := redeemedOf(t, s, c); n != 1 {
		t.Fatalf("redeemed %d: a code a paid invoice carried counts for good, want 1", n)
	}
	page, err := s.CampaignCodes(ctx, c, promo.CampaignCodesFilter{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if r := page.Data[0]; !r.Redeemed || r.Redemption.Customer != "cus_b" || r.Redemption.Subscription != "sub_b" || page.Data[1].Redeemed {
		t.Fatalf("codes page %+v", page.Data)
	}
	// Deactivating the campaign deactivates every code.
	inactive := promo.StatusInactive
	next, err := promo.ApplyCampaignUpdate(c, promo.CampaignUpdate{Status: &inactive}, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCampaign(ctx, next); err != nil {
		t.Fatal(err)
	}
	if p := lookup(codes[2], "cus_d"); p.Status != promo.StatusInactive {
		t.Fatalf("code of an inactive campaign reads %s", p.Status)
	}
	if _, err := reserve(codes[2], "cus_d"); promo.CodeOf(err) != promo.CodeCodeInactive {
		t.Fatalf("code of an inactive campaign: %v", err)
	}
}

// A code redeemed through the adapter and through its Stripe promotion code
// (Checkout) at once: the line with the lower ID keeps the code, the other
// is flagged code_already_used, whichever is attributed first; attributing
// again changes nothing.
func TestCampaignCodeAttributionConflict(t *testing.T) {
	for _, order := range []string{"adapter first", "checkout first"} {
		t.Run(order, func(t *testing.T) {
			s := newStore(t)
			ctx := context.Background()
			c := newCampaign(t, s, 1, "A")
			generateAll(t, s, c, "w", promo.CodeGenerator{Prefix: "A", Length: c.CodeLength}.Generate)
			code := allCodes(t, s, c)[0]
			if err := s.RecordMirrored(ctx, c.ID, code, "promo_1", true); err != nil {
				t.Fatal(err)
			}
			// The adapter's line (lower ID), confirmed; the outside line adopted.
			own := newRD(c.ID, "cus_own", "own")
			own.UniqueCode = code
			outside := disc("di_out", "cus_out", "sub_out", 2*time.Second)
			outside.NewID = "rd_9999999999"
			if order == "checkout first" {
				if _, _, _, err := s.ObserveDiscount(ctx, c.ID, outside); err != nil {
					t.Fatal(err)
				}
				if _, err := s.AttributeCampaignCode(ctx, c.ID, outside.NewID, "promo_1"); err != nil {
					t.Fatal(err)
				}
			}
			if _, _, err := s.Reserve(ctx, own, now); err != nil && order == "adapter first" {
				t.Fatal(err)
			}
			if order == "adapter first" {
				mustConfirm(t, s, c.ID, own.ID, "sub_own")
				if _, _, _, err := s.ObserveDiscount(ctx, c.ID, outside); err != nil {
					t.Fatal(err)
				}
				got, err := s.AttributeCampaignCode(ctx, c.ID, outside.NewID, "promo_1")
				if err != nil || got.UniqueCode != code || !slices.Contains(got.Flags, "code_already_used") {
					t.Fatalf("outside line %+v %v", got, err)
				}
				if again, err := s.AttributeCampaignCode(ctx, c.ID, outside.NewID, "promo_1"); err != nil || len(again.Flags) != 1 {
					t.Fatalf("again %+v %v", again, err)
				}
				page, _ := s.CampaignCodes(ctx, c, promo.CampaignCodesFilter{Limit: 1})
				if r := page.Data[0].Redemption; r == nil || r.ID != own.ID {
					t.Fatalf("holder %+v", page.Data[0])
				}
				if n := redeemedOf(t, s, c); n != 1 {
					t.Fatalf("redeemed %d: one code held by two lines counts once", n)
				}
				return
			}
			// Checkout first: the outside line holds the code, so the adapter's
			// reservation is refused before Stripe.
			c, _ = s.GetCampaign(ctx, c.ID)
			page, _ := s.CampaignCodes(ctx, c, promo.CampaignCodesFilter{Limit: 1})
			if r := page.Data[0].Redemption; r == nil || r.ID != outside.NewID || page.Data[0].PromotionCodeID != "promo_1" {
				t.Fatalf("holder %+v", page.Data[0])
			}
			if _, _, err := s.Reserve(ctx, own, now); promo.CodeOf(err) != promo.CodeCodeExhausted {
				t.Fatalf("adapter redemption of a code Checkout took: %v", err)
			}
			if n := redeemedOf(t, s, c); n != 1 {
				t.Fatalf("redeemed %d after Checkout's redemption, want 1", n)
			}
		})
	}
}

// redeemedOf is the campaign's redeemed count as GET /v1/campaigns/{id}
// reads it.
func redeemedOf(t *testing.T, s *Store, c *promo.Campaign) int {
	t.Helper()
	got, err := s.GetCampaign(context.Background(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	return got.Redeemed
}

// A campaign created with once_per_customer: false: one customer redeems
// several of its codes (each single-use, each on its own subscription), no
// customer index is written, a retry finds its own reservation by the code
// it took, and a new subscription's discount is matched by the
// subscription's promo_redemption_id alone.
func TestCampaignManyPerCustomer(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	many := false
	c := newCampaignOnce(t, s, 4, "M", &many)
	generateAll(t, s, c, "w", promo.CodeGenerator{Prefix: "M", Length: c.CodeLength}.Generate)
	if got, err := s.GetCampaign(ctx, c.ID); err != nil || !got.Terms.ManyPerCustomer || got.Terms.OncePerCustomer() {
		t.Fatalf("campaign read back: %+v %v", got, err)
	}
	if p := getCode(t, s, c.ID); !p.ManyPerCustomer {
		t.Fatalf("the campaign's code record lost the option: %+v", p)
	}
	codes := allCodes(t, s, c)
	reserve := func(text, cus, owner, sub string) (*promo.Redemption, promo.ReserveOutcome, error) {
		rd := newRD(c.ID, cus, owner)
		rd.UniqueCode, rd.Subscription = text, sub
		return s.Reserve(ctx, rd, now)
	}
	a, _, err := reserve(codes[0], "cus_a", "o1", "sub_1")
	if err != nil {
		t.Fatal(err)
	}
	mustConfirm(t, s, c.ID, a.ID, "sub_1")
	b, outcome, err := reserve(codes[1], "cus_a", "o2", "sub_2")
	if err != nil || outcome != promo.Reserved {
		t.Fatalf("the customer's second code of the campaign: %+v %v %v", b, outcome, err)
	}
	if h := custHolder(t, s, c.ID, "cus_a"); h != "" {
		t.Fatalf("customer index written: %s", h)
	}
	if _, _, err := reserve(codes[1], "cus_b", "o3", "sub_3"); promo.CodeOf(err) != promo.CodeCodeExhausted {
		t.Fatalf("another customer on a taken code: %v", err)
	}
	if _, _, err := reserve(codes[1], "cus_a", "o4", "sub_4"); promo.CodeOf(err) != promo.CodeCodeExhausted {
		t.Fatalf("the same customer on a code of theirs, another request: %v", err)
	}
	again, outcome, err := reserve(codes[1], "cus_a", "o2", "sub_2")
	if err != nil || outcome != promo.Resumed || again.ID != b.ID {
		t.Fatalf("retry of the request: %+v %v %v", again, outcome, err)
	}
	// An apply's retry resumes under the reservation's own ID (the
	// Redeemer found it as the customer's redemption of the code).
	retry := newRD(c.ID, "cus_a", "o2")
	retry.ID, retry.UniqueCode, retry.Subscription = b.ID, codes[1], "sub_2"
	again, outcome, err = s.Reserve(ctx, retry, now)
	if err != nil || outcome != promo.Resumed || again.ID != b.ID || again.State != promo.RedemptionReserved {
		t.Fatalf("retry under the reservation's ID: %+v %v %v", again, outcome, err)
	}
	if p := getCode(t, s, c.ID); p.Reserved != 1 {
		t.Fatalf("a resumed reservation counted again: reserved %d", p.Reserved)
	}
	// Its rules were decided when it was made: a retry resumes it even
	// after the campaign was switched off meanwhile (as the customer index
	// resumes a promo code's).
	setCampaignStatus := func(st promo.Status) {
		t.Helper()
		cur, err := s.GetCampaign(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		next, err := promo.ApplyCampaignUpdate(cur, promo.CampaignUpdate{Status: &st}, now)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SaveCampaign(ctx, next); err != nil {
			t.Fatal(err)
		}
	}
	setCampaignStatus(promo.StatusInactive)
	if again, outcome, err = s.Reserve(ctx, retry, now); err != nil || outcome != promo.Resumed || again.ID != b.ID {
		t.Fatalf("retry after the campaign was switched off: %+v %v %v", again, outcome, err)
	}
	setCampaignStatus(promo.StatusActive)
	if _, rd, err := s.GetByCodeForCustomer(ctx, codes[1], "cus_a"); err != nil || rd == nil || rd.ID != b.ID {
		t.Fatalf("the customer's redemption of the code: %+v %v", rd, err)
	}
	if _, rd, err := s.GetByCodeForCustomer(ctx, codes[2], "cus_a"); err != nil || rd != nil {
		t.Fatalf("a free code reads the customer's redemption %+v %v", rd, err)
	}
	if _, rd, err := s.GetByCodeForCustomer(ctx, codes[1], "cus_b"); err != nil || rd != nil {
		t.Fatalf("another customer's code reads %+v %v", rd, err)
	}
	if n := redeemedOf(t, s, c); n != 2 {
		t.Fatalf("redeemed %d, want 2", n)
	}
	mustFinish(t, s, c.ID, b.ID, promo.ReasonStripeRefused)
	if n := redeemedOf(t, s, c); n != 1 {
		t.Fatalf("redeemed %d after a release, want 1", n)
	}
	if p, rd, err := s.GetByCodeForCustomer(ctx, codes[1], "cus_a"); err != nil || rd != nil || p.Stock != 1 {
		t.Fatalf("a released code: %+v %+v %v", p, rd, err)
	}

	// A new subscription's reservation (no subscription yet): its discount
	// is matched by the subscription's promo_redemption_id, read from
	// Stripe when the event does not carry it.
	n, _, err := reserve(codes[2], "cus_a", "o5", "")
	if err != nil {
		t.Fatal(err)
	}
	d := disc("di_new", "cus_a", "sub_new", time.Second)
	d.MatchByCustomer = false
	if _, _, _, err := s.ObserveDiscount(ctx, c.ID, d); !errors.Is(err, promo.ErrSubscriptionUnread) {
		t.Fatalf("observe without the subscription's metadata: %v", err)
	}
	d.SubscriptionRead, d.SubscriptionRedemptionID = true, n.ID
	got, how, _ := mustObserve(t, s, c.ID, d)
	if how != promo.ObservedConfirmed || got.ID != n.ID || got.Subscription != "sub_new" {
		t.Fatalf("the reservation's discount: %v %+v", how, got)
	}
	// A discount made outside the adapter on another subscription of the
	// customer is a line of its own, not flagged for the customer.
	out := disc("di_out", "cus_a", "sub_out", 2*time.Second)
	out.MatchByCustomer, out.SubscriptionRead = false, true
	got, how, _ = mustObserve(t, s, c.ID, out)
	if how != promo.ObservedAdopted || len(got.Flags) != 0 {
		t.Fatalf("outside discount: %v %+v", how, got)
	}
	if n := redeemedOf(t, s, c); n != 2 {
		t.Fatalf("redeemed %d, want 2 (an outside line names no code)", n)
	}
}

// A campaign made before the redeemed counter existed is counted once, on
// the first read, and kept from then on.
func TestCampaignRedeemedCountedOnce(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	c := newCampaign(t, s, 3, "R")
	generateAll(t, s, c, "w", promo.CodeGenerator{Prefix: "R", Length: c.CodeLength}.Generate)
	codes := allCodes(t, s, c)
	for i, cus := range []string{"cus_a", "cus_b"} {
		rd := newRD(c.ID, cus, "o"+cus)
		rd.UniqueCode = codes[i]
		if _, _, err := s.Reserve(ctx, rd, now); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			mustFinish(t, s, c.ID, rd.ID, promo.ReasonStripeRefused)
		}
	}
	if err := s.rdb.HDel(ctx, codeKey(c.ID), "redeemed").Err(); err != nil {
		t.Fatal(err)
	}
	if n := redeemedOf(t, s, c); n != 1 {
		t.Fatalf("counted %d, want 1", n)
	}
	rd := newRD(c.ID, "cus_c", "oc")
	rd.UniqueCode = codes[2]
	if _, _, err := s.Reserve(ctx, rd, now); err != nil {
		t.Fatal(err)
	}
	if n := redeemedOf(t, s, c); n != 2 {
		t.Fatalf("kept %d, want 2", n)
	}
}

// The one definition of a held use on campaign codes: after each lifecycle
// the line holds the code (codes list, redeemed count) and, on a campaign
// that is once per customer, the customer's use, exactly when the domain's
// HoldsUse says so; on one that is not, no customer index is written.
func TestHoldsUseAgreesOnCampaignCodes(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	cases := []struct {
		name string
		make func(c *promo.Campaign, text string) string
	}{
		{"reserved", func(c *promo.Campaign, text string) string { return reserveCode(t, s, c, text).ID }},
		{"pending", func(c *promo.Campaign, text string) string {
			r := reserveCode(t, s, c, text)
			mustConfirm(t, s, c.ID, r.ID, "sub_a")
			return r.ID
		}},
		{"active", func(c *promo.Campaign, text string) string {
			r := reserveCode(t, s, c, text)
			mustConfirm(t, s, c.ID, r.ID, "sub_a")
			mustCount(t, s, c.ID, paid("in_1", disc("di_"+r.ID, "cus_a", "sub_a", time.Minute), "eur", 100))
			return r.ID
		}},
		{"ended after a paid invoice", func(c *promo.Campaign, text string) string {
			r := reserveCode(t, s, c, text)
			mustConfirm(t, s, c.ID, r.ID, "sub_a")
			mustCount(t, s, c.ID, paid("in_1", disc("di_"+r.ID, "cus_a", "sub_a", time.Minute), "eur", 100))
			mustFinish(t, s, c.ID, r.ID, promo.ReasonRemoved)
			return r.ID
		}},
		{"ended before a paid invoice", func(c *promo.Campaign, text string) string {
			r := reserveCode(t, s, c, text)
			mustConfirm(t, s, c.ID, r.ID, "sub_a")
			mustFinish(t, s, c.ID, r.ID, promo.ReasonRemoved)
			return r.ID
		}},
		{"released", func(c *promo.Campaign, text string) string {
			r := reserveCode(t, s, c, text)
			mustFinish(t, s, c.ID, r.ID, promo.ReasonStripeRefused)
			return r.ID
		}},
		{"released, then confirmed after all", func(c *promo.Campaign, text string) string {
			r := reserveCode(t, s, c, text)
			mustFinish(t, s, c.ID, r.ID, promo.ReasonStripeRefused)
			mustConfirm(t, s, c.ID, r.ID, "sub_a")
			return r.ID
		}},
	}
	for _, once := range []bool{true, false} {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("once_per_customer=%v/%s", once, tc.name), func(t *testing.T) {
				c := newCampaignOnce(t, s, 1, "H", &once)
				generateAll(t, s, c, "w", promo.CodeGenerator{Prefix: "H", Length: c.CodeLength}.Generate)
				id := tc.make(c, allCodes(t, s, c)[0])
				r, err := s.GetRedemption(ctx, c.ID, id)
				if err != nil {
					t.Fatal(err)
				}
				page, err := s.CampaignCodes(ctx, c, promo.CampaignCodesFilter{Limit: 1})
				if err != nil {
					t.Fatal(err)
				}
				holds := r.HoldsUse()
				if page.Data[0].Redeemed != holds || (redeemedOf(t, s, c) == 1) != holds {
					t.Fatalf("codes list redeemed %v, count %d; domain HoldsUse %v", page.Data[0].Redeemed, redeemedOf(t, s, c), holds)
				}
				if got := custHolder(t, s, c.ID, "cus_a"); (got == id) != (holds && once) || (!once && got != "") {
					t.Fatalf("customer holder %q; HoldsUse %v, once per customer %v", got, holds, once)
				}
			})
		}
	}
}

// reserveCode reserves one of c's codes for cus_a on sub_a.
func reserveCode(t *testing.T, s *Store, c *promo.Campaign, text string) *promo.Redemption {
	t.Helper()
	rd := newRD(c.ID, "cus_a", "owner-"+text)
	rd.UniqueCode, rd.Subscription, rd.Source = text, "sub_a", promo.SourceExistingSubscription
	got, _, err := s.Reserve(context.Background(), rd, now)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// The list reads each campaign's count as the campaign's page does, one
// counted once when it has no counter yet.
func TestCampaignListRedeemed(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	a, b := newCampaign(t, s, 2, "LA"), newCampaign(t, s, 2, "LB")
	for _, c := range []*promo.Campaign{a, b} {
		generateAll(t, s, c, "w", promo.CodeGenerator{Prefix: c.Prefix, Length: c.CodeLength}.Generate)
		rd := newRD(c.ID, "cus_a", "o"+c.ID)
		rd.UniqueCode = allCodes(t, s, c)[0]
		if _, _, err := s.Reserve(ctx, rd, now); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.rdb.HDel(ctx, codeKey(b.ID), "redeemed").Err(); err != nil {
		t.Fatal(err)
	}
	page, err := s.ListCampaigns(ctx, promo.ListFilter{Limit: 10})
	if err != nil || len(page.Data) != 2 {
		t.Fatalf("list %+v %v", page, err)
	}
	for _, c := range page.Data {
		if c.Redeemed != 1 {
			t.Errorf("%s: redeemed %d, want 1", c.ID, c.Redeemed)
		}
	}
}

// The code's single use goes to the lines naming it in ID order, as stock
// does: when the line holding a code gives it back (it ended before any
// paid invoice), the first line flagged code_already_used for that code
// takes it, so which line holds a code does not depend on the events'
// order (the rebuild from Stripe, promo.CampaignCodeHolders, picks it), and
// the adapter cannot hand the code to a third customer while that line is
// live.
func TestCampaignCodeGivenBackGoesToTheWaitingLine(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	c := newCampaign(t, s, 1, "A")
	generateAll(t, s, c, "w", promo.CodeGenerator{Prefix: "A", Length: c.CodeLength}.Generate)
	code := allCodes(t, s, c)[0]
	if err := s.RecordMirrored(ctx, c.ID, code, "promo_1", true); err != nil {
		t.Fatal(err)
	}
	own := newRD(c.ID, "cus_own", "own")
	own.UniqueCode = code
	if _, _, err := s.Reserve(ctx, own, now); err != nil {
		t.Fatal(err)
	}
	mustConfirm(t, s, c.ID, own.ID, "sub_own")
	outside := disc("di_out", "cus_out", "sub_out", 2*time.Second)
	outside.NewID = "rd_9999999999"
	if _, _, _, err := s.ObserveDiscount(ctx, c.ID, outside); err != nil {
		t.Fatal(err)
	}
	if got, err := s.AttributeCampaignCode(ctx, c.ID, outside.NewID, "promo_1"); err != nil || !slices.Contains(got.Flags, promo.FlagCodeAlreadyUsed) {
		t.Fatalf("outside line %+v %v", got, err)
	}
	// The adapter's line is removed before any paid invoice.
	if _, _, err := s.Finish(ctx, c.ID, own.ID, promo.ReasonRemoved, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	c, _ = s.GetCampaign(ctx, c.ID)
	page, _ := s.CampaignCodes(ctx, c, promo.CampaignCodesFilter{Limit: 1})
	if r := page.Data[0].Redemption; r == nil || r.ID != outside.NewID {
		t.Fatalf("after the holder gave the code back, holder %+v, want the waiting line %s", page.Data[0].Redemption, outside.NewID)
	}
	third := newRD(c.ID, "cus_third", "third")
	third.UniqueCode = code
	if _, _, err := s.Reserve(ctx, third, now.Add(time.Hour)); promo.CodeOf(err) != promo.CodeCodeExhausted {
		t.Fatalf("a third customer took a code a live line waits for: %v", err)
	}
	if w, err := s.GetRedemption(ctx, c.ID, outside.NewID); err != nil || slices.Contains(w.Flags, promo.FlagCodeAlreadyUsed) {
		t.Fatalf("the line that took the code is still flagged: %+v %v", w, err)
	}
	// The scripts and reconcile's rule agree on the holder.
	var lines []*promo.Redemption
	if err := s.EachRedemption(ctx, c.ID, func(r *promo.Redemption) error { lines = append(lines, r); return nil }); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(lines, func(a, b *promo.Redemption) int { return strings.Compare(a.ID, b.ID) })
	used, err := s.rdb.HGetAll(ctx, campaignUsedKey(c.ID)).Result()
	if want := promo.CampaignCodeHolders(lines); err != nil || !maps.Equal(used, want) {
		t.Fatalf("used %v, reconcile's rule gives %v (%v)", used, want, err)
	}
}

// The promotion code switch queue: a given-back code is queued only when it
// is mirrored and its campaign active; a code queued again while the worker
// switched it stays queued; each switch is recorded with the code's switch
// count; a promotion_code.updated read back before the adapter's last
// switch does not overwrite it.
func TestCampaignPromotionCodeSwitchQueue(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	c := newCampaign(t, s, 2, "Q")
	generateAll(t, s, c, "w", promo.CodeGenerator{Prefix: "Q", Length: c.CodeLength}.Generate)
	codes := allCodes(t, s, c)
	next := func() []promo.CodeSync {
		t.Helper()
		got, _, err := s.NextCodeSync(ctx, c.ID, 10)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if err := s.QueueGivenBack(ctx, c.ID, codes[0]); err != nil || len(next()) != 0 {
		t.Fatalf("a code without promotion code was queued: %v", err)
	}
	if err := s.RecordMirrored(ctx, c.ID, codes[0], "promo_q", false); err != nil {
		t.Fatal(err)
	}
	if err := s.QueueGivenBack(ctx, c.ID, codes[0]); err != nil {
		t.Fatal(err)
	}
	q := next()
	if len(q) != 1 || q[0].Text != codes[0] || q[0].PromotionCodeID != "promo_q" || !q[0].Known || q[0].Active || q[0].Switches != 0 {
		t.Fatalf("queue %+v", q)
	}
	// Queued again while the worker switches it: it stays for another look.
	if err := s.QueueCodeSync(ctx, c.ID, codes[0], false); err != nil {
		t.Fatal(err)
	}
	if err := s.CodeSynced(ctx, c.ID, q[0], true, true); err != nil {
		t.Fatal(err)
	}
	q2 := next()
	if len(q2) != 1 || !q2[0].Active || q2[0].Switches != 1 || q2[0].Score == q[0].Score {
		t.Fatalf("re-queued code %+v", q2)
	}
	if err := s.CodeSynced(ctx, c.ID, q2[0], false, true); err != nil || len(next()) != 0 {
		t.Fatalf("checked code still queued: %v", err)
	}
	// A read of Stripe older than the adapter's last switch is dropped.
	seen, err := s.CampaignPromotionCode(ctx, c.ID, "promo_q")
	if err != nil || seen.Text != codes[0] || seen.Switches != 1 {
		t.Fatalf("promotion code %+v %v", seen, err)
	}
	stale := seen
	stale.Switches = 0
	if ok, err := s.ObservePromotionCodeActive(ctx, c.ID, stale, false); ok || err != nil {
		t.Fatalf("stale read recorded: %v %v", ok, err)
	}
	if ok, err := s.ObservePromotionCodeActive(ctx, c.ID, seen, false); !ok || err != nil {
		t.Fatalf("read recorded: %v %v", ok, err)
	}
	if got, _ := s.CampaignPromotionCode(ctx, c.ID, "promo_q"); got.Active || got.Switches != 1 {
		t.Fatalf("recorded %+v", got)
	}
	if _, err := s.CampaignPromotionCode(ctx, c.ID, "promo_none"); !errors.Is(err, promo.ErrNotFound) {
		t.Fatalf("unknown promotion code: %v", err)
	}
	// An inactive campaign's given-back code is not queued.
	inactive := promo.StatusInactive
	off, err := promo.ApplyCampaignUpdate(c, promo.CampaignUpdate{Status: &inactive}, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCampaign(ctx, off); err != nil {
		t.Fatal(err)
	}
	if err := s.QueueGivenBack(ctx, c.ID, codes[0]); err != nil || len(next()) != 0 {
		t.Fatalf("an inactive campaign's code was queued: %v", err)
	}
}

// A campaign code redeemed by the adapter and, before its webhooks came,
// through its Stripe promotion code (Checkout): the line with the lower ID
// keeps the code and the other is flagged code_already_used in every order
// of the events, also when the adapter's line is seen ending before its
// paid invoice is seen (it needs the code after all, and takes it back).
func TestCampaignCodeHolderDoesNotDependOnOrder(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	for n, perm := range permutations(4) {
		c := newCampaign(t, s, 1, fmt.Sprintf("P%d", n))
		generateAll(t, s, c, "w", promo.CodeGenerator{Prefix: c.Prefix, Length: c.CodeLength}.Generate)
		code := allCodes(t, s, c)[0]
		pid := fmt.Sprintf("promo_%d", n)
		if err := s.RecordMirrored(ctx, c.ID, code, pid, true); err != nil {
			t.Fatal(err)
		}
		own := newRD(c.ID, "cus_own", "own")
		own.UniqueCode = code
		if _, _, err := s.Reserve(ctx, own, now); err != nil {
			t.Fatal(err)
		}
		mustConfirm(t, s, c.ID, own.ID, "sub_own")
		ownDisc := disc("di_"+own.ID, "cus_own", "sub_own", time.Second)
		ownEnd := ownDisc
		ownEnd.At = now.Add(time.Hour)
		outside := disc("di_out", "cus_out", "sub_out", 2*time.Second)
		steps := []func(){
			func() { mustCount(t, s, c.ID, paid("in_own", ownDisc, "usd", 100)) },
			func() { mustEnd(t, s, c.ID, ownEnd, promo.ReasonDeleted) },
			func() {
				mustObserve(t, s, c.ID, outside)
				if _, err := s.AttributeCampaignCode(ctx, c.ID, outside.NewID, pid); err != nil {
					t.Fatal(err)
				}
			},
			func() { mustCount(t, s, c.ID, paid("in_out", outside, "usd", 100)) },
		}
		for _, i := range perm {
			steps[i]()
		}
		c, _ = s.GetCampaign(ctx, c.ID)
		page, err := s.CampaignCodes(ctx, c, promo.CampaignCodesFilter{Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if r := page.Data[0].Redemption; r == nil || r.ID != own.ID {
			t.Fatalf("order %v: holder %+v, want the adapter's line %s", perm, page.Data[0].Redemption, own.ID)
		}
		out, err := s.GetRedemption(ctx, c.ID, outside.NewID)
		if err != nil || out.UniqueCode != code || !slices.Equal(out.Flags, []string{"code_already_used"}) {
			t.Fatalf("order %v: Checkout line %+v %v", perm, out, err)
		}
		mine, _ := s.GetRedemption(ctx, c.ID, own.ID)
		if len(mine.Flags) != 0 {
			t.Fatalf("order %v: adapter line flagged %v", perm, mine.Flags)
		}
	}
}
