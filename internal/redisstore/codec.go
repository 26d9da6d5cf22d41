package redisstore

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
)

// codeDoc is the stored JSON of a promo code (the hash field "doc"),
// version 3: short names, Unix-ms times, and nothing the hash's own fields
// hold (status, state, unlimited, expires_ms and the counters) or its key
// gives (the ID). The Stripe refs are always written: sc and sp name the
// coupon and the promotion code once they exist and are "" until then, so
// an unfinished create knows what it still has to make. No other version is
// read.
//
// The rule of one use per customer is the hash field "many" (as unlimited,
// the scripts read it): "1" for a campaign created with once_per_customer:
// false, absent otherwise, so every other record (and every record written
// before the option existed) is once per customer, as it was written; a
// build that does not know the field enforces once per customer on every
// code, stricter, never looser.
type codeDoc struct {
	V        int               `json:"v"`
	Code     string            `json:"c"`
	Type     promo.PromoType   `json:"t"`
	Amount   int64             `json:"a"`
	Currency string            `json:"cur,omitempty"`
	Duration promo.Duration    `json:"d"`
	Months   int               `json:"m,omitempty"`
	NewUsers bool              `json:"nu,omitempty"`
	Members  bool              `json:"em,omitempty"`
	Plans    []string          `json:"pl,omitempty"`
	Products []string          `json:"pp,omitempty"`
	Reason   string            `json:"r,omitempty"`
	Metadata map[string]string `json:"md,omitempty"`
	Created  int64             `json:"ct"`
	Updated  int64             `json:"ut"`
	Coupon   string            `json:"sc"` // the Stripe coupon's ID; "" while it does not exist
	Promo    string            `json:"sp"` // the Stripe promotion code's ID; "" while it does not exist
	Active   bool              `json:"sa,omitempty"`
	Expires  int64             `json:"sx,omitempty"` // the Stripe promotion code's expires_at
	Owner    string            `json:"so,omitempty"`
	Lease    int64             `json:"sl,omitempty"`
	Switches int               `json:"sw,omitempty"`
}

const codeDocVersion = 3

// codeFields renders the hash fields of p, excluding the counters unless
// withStock (stock) is set. The other counters (reserved, held, uses,
// stripe_redeemed, amt:<currency>) are only ever changed by scripts.
func codeFields(p *promo.PromoCode, withStock bool) ([]any, error) {
	d := codeDoc{
		V: codeDocVersion, Code: p.Code, Type: p.PromoType, Amount: p.AmountOff, Currency: p.Currency,
		Duration: p.Duration, Months: p.DurationMonths, NewUsers: p.NewUsersOnly, Members: p.ExistingMembershipsOnly,
		Plans: p.PlanIDs, Products: p.PlanProducts, Reason: p.StatusReason, Metadata: p.Metadata,
		Created: ms(p.CreatedAt), Updated: ms(p.UpdatedAt), Coupon: p.Stripe.CouponID, Promo: p.Stripe.PromotionCodeID,
		Active: p.Stripe.Active, Expires: msPtr(p.Stripe.ExpiresAt), Owner: p.Stripe.Owner, Lease: ms(p.Stripe.LeaseUntil),
		Switches: p.Stripe.ActiveSwitches,
	}
	doc, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	f := []any{"doc", doc, "status", string(p.Status), "state", string(p.Stripe.State),
		"unlimited", boolInt(p.UnlimitedStock), "expires_ms", msPtr(p.ExpiresAt)}
	if p.ManyPerCustomer {
		// Only ever set, at a campaign's create: a term, it never changes.
		f = append(f, "many", 1)
	}
	if withStock {
		f = append(f, "stock", p.Stock)
	}
	return f, nil
}

// codeHash is a code hash's fields: an HGETALL map (mapHash), or the flat
// field, value list a script returns (flatHash), read where it is.
type codeHash interface {
	field(name string) (string, bool)
	amounts() map[string]int64 // the amt:<currency> counters (discounted)
}

type mapHash map[string]string

func (h mapHash) field(name string) (string, bool) { v, ok := h[name]; return v, ok }

func (h mapHash) amounts() map[string]int64 {
	var out map[string]int64
	for k, v := range h {
		out = addAmount(out, k, v)
	}
	return out
}

// flatHash is HGETALL's reply as a flat list of names and values. A code
// hash has a dozen fields, so a scan is cheaper than building a map for
// one request's reads.
type flatHash []any

func (h flatHash) field(name string) (string, bool) {
	for i := 0; i+1 < len(h); i += 2 {
		if str(h[i]) == name {
			return str(h[i+1]), true
		}
	}
	return "", false
}

func (h flatHash) amounts() map[string]int64 {
	var out map[string]int64
	for i := 0; i+1 < len(h); i += 2 {
		out = addAmount(out, str(h[i]), str(h[i+1]))
	}
	return out
}

// get is a field's value, "" when absent.
func get[H codeHash](h H, name string) string {
	v, _ := h.field(name)
	return v
}

// decodeCode builds the promo code id from its hash (HGETALL result).
func decodeCode(id string, h map[string]string) (*promo.PromoCode, error) {
	raw, ok := h["doc"]
	if !ok {
		return nil, promo.ErrNotFound
	}
	d, err := parseDoc(id, raw)
	if err != nil {
		return nil, err
	}
	return buildCode(id, d, mapHash(h)), nil
}

// parseDoc reads a stored code document (version codeDocVersion only).
func parseDoc(id, raw string) (*codeDoc, error) {
	var d codeDoc
	if err := json.Unmarshal([]byte(raw), &d); err != nil {
		return nil, err
	}
	if d.V != codeDocVersion {
		return nil, fmt.Errorf("promo code %s: stored record version %d, this build reads version %d", id, d.V, codeDocVersion)
	}
	return &d, nil
}

// buildCode makes the promo code from its document and hash fields. The
// code gets its own copies of the document's slices and maps (a document
// may be shared through docCache).
func buildCode[H codeHash](id string, d *codeDoc, h H) *promo.PromoCode {
	p := &promo.PromoCode{
		ID: id, Code: d.Code, PromoType: d.Type, AmountOff: d.Amount, Currency: d.Currency, Duration: d.Duration,
		DurationMonths: d.Months, ExpiresAt: timePtr(atoi(get(h, "expires_ms"))), NewUsersOnly: d.NewUsers,
		ExistingMembershipsOnly: d.Members, PlanIDs: slices.Clone(d.Plans), PlanProducts: slices.Clone(d.Products),
		UnlimitedStock: get(h, "unlimited") == "1", ManyPerCustomer: get(h, "many") == "1", Status: promo.Status(get(h, "status")),
		StatusReason: d.Reason,
		Metadata:     maps.Clone(d.Metadata), CreatedAt: fromMS(d.Created), UpdatedAt: fromMS(d.Updated),
		Stripe: promo.StripeRefs{CouponID: d.Coupon, PromotionCodeID: d.Promo, Active: d.Active, ExpiresAt: timePtr(d.Expires),
			State: promo.SyncState(get(h, "state")), Owner: d.Owner, LeaseUntil: fromMS(d.Lease), ActiveSwitches: d.Switches},
	}
	return withCounters(p, h)
}

// docCache keeps the last decoded document of each code read on the
// request paths (validate, apply), keyed by the stored text itself: a hit
// needs the same bytes, so a changed document is decoded again and no
// invalidation is needed across replicas. Decoding the document was a fifth
// of validate's CPU.
type docCache struct {
	mu sync.RWMutex
	m  map[string]cachedDoc
}

type cachedDoc struct {
	raw string
	doc *codeDoc
}

func newDocCache() *docCache { return &docCache{m: map[string]cachedDoc{}} }

// decode is decodeCode through the cache.
func (c *docCache) decode(id string, h flatHash) (*promo.PromoCode, error) {
	raw, ok := h.field("doc")
	if !ok {
		return nil, promo.ErrNotFound
	}
	c.mu.RLock()
	e, hit := c.m[id]
	c.mu.RUnlock()
	if !hit || e.raw != raw {
		d, err := parseDoc(id, raw)
		if err != nil {
			return nil, err
		}
		e = cachedDoc{raw: raw, doc: d}
		c.mu.Lock()
		if len(c.m) >= textCacheMax {
			clear(c.m)
		}
		c.m[id] = e
		c.mu.Unlock()
	}
	return buildCode(id, e.doc, h), nil
}

// withCounters fills the counter fields of a code hash into p.
func withCounters[H codeHash](p *promo.PromoCode, h H) *promo.PromoCode {
	p.Stock, p.Reserved, p.Held, p.Uses = atoi(get(h, "stock")), atoi(get(h, "reserved")), atoi(get(h, "held")), atoi(get(h, "uses"))
	p.Discounted, p.Stripe.TimesRedeemed = discounted(h), atoi(get(h, "stripe_redeemed"))
	if p.Metadata == nil {
		p.Metadata = map[string]string{}
	}
	return p
}

func msPtr(t *time.Time) int64 {
	if t == nil {
		return 0
	}
	return t.UnixMilli()
}

func timePtr(ms int64) *time.Time {
	if ms == 0 {
		return nil
	}
	t := time.UnixMilli(ms).UTC()
	return &t
}

// amountPrefix starts the counter fields of discounted amounts per currency.
const amountPrefix = "amt:"

// discounted reads the amt:<currency> counters of a code hash.
func discounted[H codeHash](h H) map[string]int64 { return h.amounts() }

// addAmount adds field k of a code hash to out when it is an amt:<currency>
// counter.
func addAmount(out map[string]int64, k, v string) map[string]int64 {
	if cur, ok := strings.CutPrefix(k, amountPrefix); ok {
		if out == nil {
			out = map[string]int64{}
		}
		out[cur] = atoi(v)
	}
	return out
}

func atoi(s string) int64 {
	if s == "" {
		return 0 // an absent field: without the error ParseInt would allocate
	}
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
