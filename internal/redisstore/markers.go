package redisstore

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/redis/go-redis/v9"
)

// Customer markers and validate's read of the customer's slot.
//
// Validate of one hot promo code used to be one script on that code's slot
// for every customer: the busiest slot of a cluster. Now each customer has
// a set of the codes on which it has, or may have, a ledger line
// (customerCodesKey, in the customer's own slot), written before any line
// naming the customer is made:
//
//   - Reserve (apply and subscribe, promo codes and campaigns) adds it
//     before the reserve script, as the sweeper's due mark is written
//     before the reservation;
//   - the scripts that adopt a discount made outside the adapter
//     (observe_discount, end_discount, count_invoice) refuse to adopt
//     without it: they answer "mark", the store adds it and runs the
//     script again (the usual event, about a known line, stays one trip);
//   - reconcile -fix adds the markers of a rebuilt ledger's customers
//     before it writes the ledger;
//   - migrate-keys adds them for every line already stored, then sets
//     ba:{catalog}:layout to layoutMarkers.
//
// A marker is never removed, so one without a line (a crash in between, a
// released reservation) only costs validate a second read. Validate trusts
// a missing marker only once the layout says every line has one (Store.
// markersOK, read at start-up and every layoutRecheck by WatchLayout).
//
// Validate then reads the code's record (status, stock, expiry: what
// Decide needs) from a per-replica snapshot (codeSnaps), refreshed from
// Redis at most every VALIDATE_CODE_MAX_AGE and dropped as soon as this
// process writes the code. Another replica's change is seen after at most
// that age; the customer's own redemption is never stale (it is read from
// the code's slot whenever the marker is there).
//
// Validate of a campaign code reads the campaign's code record from the
// same snapshots (keyed by the campaign's ID) and, in one round trip to the
// campaign's slot, the customer's redemption of the campaign and the
// code's holder, never stale (campaignCodeForValidate; no marker needed).

// layoutMarkers is the layout version in which every ledger line's
// customer has its marker.
const layoutMarkers = 2

// layoutRecheck is how often a replica that does not trust the markers yet
// reads the layout key again.
var layoutRecheck = 30 * time.Second

// markCustomers adds codeID to the markers of customers (one pipeline,
// split by slot in a cluster), before lines naming them are written.
func (s *Store) markCustomers(ctx context.Context, codeID string, customers ...string) error {
	seen := make(map[string]bool, len(customers))
	var todo []string
	for _, c := range customers {
		if c != "" && !seen[c] {
			seen[c] = true
			todo = append(todo, c)
		}
	}
	switch len(todo) {
	case 0:
		return nil
	case 1:
		return unavailable(s.rdb.SAdd(ctx, customerCodesKey(todo[0]), codeID).Err())
	}
	for start := 0; start < len(todo); start += legacyBatch {
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, c := range todo[start:min(start+legacyBatch, len(todo))] {
				p.SAdd(ctx, customerCodesKey(c), codeID)
			}
			return nil
		})
		if err != nil {
			return unavailable(err)
		}
	}
	return nil
}

// MarkersInUse reports whether validate trusts the customer markers (the
// layout key says every line has one).
func (s *Store) MarkersInUse() bool { return s.markersOK.Load() }

// CheckLayout reads ba:{catalog}:layout and trusts the markers when it says
// layoutMarkers. A store with no code, campaign or legacy key at all is
// migrated by definition: the key is written and the markers trusted.
func (s *Store) CheckLayout(ctx context.Context) (bool, error) {
	v, err := s.rdb.Get(ctx, keyLayout).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, unavailable(err)
	}
	if n, _ := strconv.Atoi(v); n >= layoutMarkers {
		s.markersOK.Store(true)
		return true, nil
	}
	// Every key below is in the {catalog} slot: one EXISTS.
	keys := append(append(append([]string{}, listKeys...), campaignListKeys...), keyCampaignsGenerating, legacyCodes)
	n, err := s.rdb.Exists(ctx, keys...).Result()
	if err != nil {
		return false, unavailable(err)
	}
	if n > 0 {
		return false, nil
	}
	if err := s.setLayout(ctx); err != nil {
		return false, err
	}
	s.markersOK.Store(true)
	return true, nil
}

// setLayout records that every ledger line's customer has its marker.
func (s *Store) setLayout(ctx context.Context) error {
	return unavailable(s.rdb.Set(ctx, keyLayout, strconv.Itoa(layoutMarkers), 0).Err())
}

// WatchLayout runs CheckLayout now and then every layoutRecheck until the
// markers are trusted or ctx ends (the service starts it; validate never
// reads the layout key itself).
func (s *Store) WatchLayout(ctx context.Context) {
	t := time.NewTicker(layoutRecheck)
	defer t.Stop()
	for {
		if ok, _ := s.CheckLayout(ctx); ok {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// SetValidateCodeMaxAge sets how old the code snapshot validate reads may be
// (VALIDATE_CODE_MAX_AGE); 0 turns the snapshot, and validate's read of the
// customer's slot, off (validate reads the code's slot every time, as New
// leaves it). Call it before the store serves requests.
func (s *Store) SetValidateCodeMaxAge(d time.Duration) {
	if d <= 0 {
		s.snaps = nil
		return
	}
	s.snaps = &codeSnaps{maxAge: d, m: map[string]*codeSnap{}, now: time.Now}
}

// dropSnapshot forgets this process's snapshot of a code it just wrote.
func (s *Store) dropSnapshot(id string) {
	if s.snaps != nil {
		s.snaps.drop(id)
	}
}

// codeSnapsMax bounds the snapshots; when full they start over.
const codeSnapsMax = 10_000

// codeSnaps are this process's snapshots of promo codes, and of campaigns'
// code records (keyed by the campaign's ID), for validate: one read of a
// code's hash serves every validate of it for maxAge, and concurrent
// validates of a code whose snapshot is stale share one read.
type codeSnaps struct {
	maxAge time.Duration
	now    func() time.Time // time.Now (monotonic); tests move it
	mu     sync.Mutex
	m      map[string]*codeSnap
}

type codeSnap struct {
	ready chan struct{} // closed once p or err is set
	p     *promo.PromoCode
	err   error
	read  time.Time // when the read started (monotonic): the age counts from there
}

// get returns code id's snapshot, reading it with load when there is none
// younger than maxAge (one load at a time per code; the others wait for it).
func (c *codeSnaps) get(ctx context.Context, id string, load func(context.Context) (*promo.PromoCode, error)) (*promo.PromoCode, error) {
	c.mu.Lock()
	if e := c.m[id]; e != nil {
		select {
		case <-e.ready:
			if e.err == nil && c.now().Sub(e.read) < c.maxAge {
				c.mu.Unlock()
				return e.p, nil
			}
		default: // being read: share that read
			c.mu.Unlock()
			select {
			case <-e.ready:
			case <-ctx.Done():
				return nil, unavailable(ctx.Err())
			}
			return e.p, e.err
		}
	}
	e := &codeSnap{ready: make(chan struct{}), read: c.now()}
	if len(c.m) >= codeSnapsMax {
		clear(c.m)
	}
	c.m[id] = e
	c.mu.Unlock()
	// The read is shared: one caller giving up must not fail the others.
	e.p, e.err = load(context.WithoutCancel(ctx))
	close(e.ready)
	return e.p, e.err
}

// drop forgets a code's snapshot (a read in flight is left to its waiters
// but no later get sees it).
func (c *codeSnaps) drop(id string) {
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}

// loadCode reads a code's hash for its snapshot.
func (s *Store) loadCode(ctx context.Context, id string) (*promo.PromoCode, error) {
	h, err := s.rdb.HGetAll(ctx, codeKey(id)).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	flat := make(flatHash, 0, 2*len(h))
	for k, v := range h {
		flat = append(flat, k, v)
	}
	return s.docs.decode(id, flat)
}

// ReadForValidate implements promo.ValidateReader. With the snapshot on:
//
//   - for a promo code whose text this process knows, with the markers
//     trusted: the code from its snapshot and one round trip to the
//     customer's slot (the marker, and the paid mark for a new_users_only
//     code); only when the marker is there, the customer's redemption from
//     the code's slot as GetByCodeForCustomer reads it;
//   - for a campaign code whose campaign this process knows (the text hint
//     or the campaign code index, as GetByCodeForCustomer resolves it):
//     the campaign's code record from its snapshot and one round trip to
//     the campaign's slot for the customer's redemption and the code's
//     holder (campaignCodeForValidate).
//
// Anything else (an unknown text, a snapshot that does not match the text,
// the snapshot off) is GetByCodeForCustomer.
func (s *Store) ReadForValidate(ctx context.Context, code, customer string) (promo.ValidateRead, error) {
	if s.snaps == nil {
		return s.readForValidateSlow(ctx, code, customer)
	}
	id, ok := s.texts.get(code)
	if !ok {
		if cmpID, ok := s.cidx.lookup(code); ok {
			return s.campaignCodeForValidate(ctx, cmpID, code, customer)
		}
		p, rd, err := s.byTextKey(ctx, code, customer) // GetByCodeForCustomer, without asking the hint and index again
		return promo.ValidateRead{Code: p, Held: rd}, err
	}
	if strings.HasPrefix(id, "cmp_") {
		// A campaign's texts are never freed or moved: the hint is exact.
		return s.campaignCodeForValidate(ctx, id, code, customer)
	}
	if !s.markersOK.Load() {
		return s.readForValidateSlow(ctx, code, customer)
	}
	p, err := s.snaps.get(ctx, id, func(ctx context.Context) (*promo.PromoCode, error) { return s.loadCode(ctx, id) })
	if err != nil && !errors.Is(err, promo.ErrNotFound) {
		return promo.ValidateRead{}, err
	}
	if err != nil || p.Code != code || p.Status == promo.StatusArchived {
		s.snaps.drop(id)
		return s.readForValidateSlow(ctx, code, customer) // checks the hint and asks Redis
	}
	marked := redis.NewBoolCmd(ctx, "sismember", customerCodesKey(customer), id)
	var paidN *redis.IntCmd
	if p.NewUsersOnly {
		paidN = redis.NewIntCmd(ctx, "exists", paidKey(customer)) // the customer's slot too
		s.shared.do(ctx, marked, paidN)
	} else {
		s.shared.do(ctx, marked)
	}
	if err := marked.Err(); err != nil {
		return promo.ValidateRead{}, unavailable(err)
	}
	if paidN != nil && paidN.Err() != nil {
		return promo.ValidateRead{}, unavailable(paidN.Err())
	}
	out := promo.ValidateRead{Code: snapshotCopy(p)}
	if paidN != nil {
		out.Paid, out.PaidRead = paidN.Val() == 1, true
	}
	if !marked.Val() {
		return out, nil
	}
	// The customer has, or may have, a line: read it (and the code) from
	// the code's slot, as apply would.
	fresh, rd, err := s.codeForCustomer(ctx, id, customer)
	if err != nil && !errors.Is(err, promo.ErrNotFound) {
		return promo.ValidateRead{}, err
	}
	if err != nil || fresh.Code != code || fresh.Status == promo.StatusArchived {
		s.snaps.drop(id)
		return s.readForValidateSlow(ctx, code, customer)
	}
	out.Code, out.Held = fresh, rd
	out.PaidRead = out.PaidRead && fresh.NewUsersOnly
	return out, nil
}

// campaignCodeForValidate is campaignCodeForCustomer for validate: the
// campaign's code record (terms, status, expiry: the same hash, decoded the
// same way) from its snapshot, keyed by the campaign's ID as a promo code's
// by its own, and only the per-customer and per-code parts fresh, in one
// read-only script on the campaign's slot (campaign_code_uses.lua); the
// answer put together as campaignCodeForCustomer's (campaignCode). The
// customer's redemption and the code's holder are never stale; another
// replica's change of the campaign (status, expiry) shows after at most
// the snapshot's max age, this replica's own at once (every write of the
// campaign's code record or ledger drops the snapshot).
//
// It does not wait for the customer markers (markersOK): they only tell a
// promo code's validate when it may skip the code's slot, and here the
// customer's redemption is read from the campaign's slot on every validate,
// in the same round trip as the holder, so a missing marker can hide
// nothing.
func (s *Store) campaignCodeForValidate(ctx context.Context, cmpID, text, customer string) (promo.ValidateRead, error) {
	// A failed read (promo.ErrNotFound: no code record, as the full read
	// answers too) is returned, not kept: the next validate reads again.
	base, err := s.snaps.get(ctx, cmpID, func(ctx context.Context) (*promo.PromoCode, error) { return s.loadCode(ctx, cmpID) })
	if err != nil {
		return promo.ValidateRead{}, err
	}
	u, err := s.campaignUsesFor(ctx, cmpID, text, customer)
	if err != nil {
		return promo.ValidateRead{}, err
	}
	p, rd, err := campaignCode(cmpID, base, text, customer, u)
	if err != nil {
		return promo.ValidateRead{}, err
	}
	return promo.ValidateRead{Code: p, Held: rd}, nil
}

// readForValidateSlow is validate's read without markers: the code and the
// customer's redemption from the code's slot (the paid mark is left to
// CustomerHasPaid).
func (s *Store) readForValidateSlow(ctx context.Context, code, customer string) (promo.ValidateRead, error) {
	p, rd, err := s.GetByCodeForCustomer(ctx, code, customer)
	if err != nil {
		return promo.ValidateRead{}, err
	}
	return promo.ValidateRead{Code: p, Held: rd}, nil
}

// snapshotCopy gives a validate its own PromoCode: the snapshot is shared.
func snapshotCopy(p *promo.PromoCode) *promo.PromoCode {
	cp := *p
	return &cp
}
