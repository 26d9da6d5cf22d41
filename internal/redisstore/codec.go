package redisstore

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
)

// record is the stored JSON form of a promo code (the hash field "doc").
// Counters live in their own hash fields and are not part of it.
type record struct {
	ID                      string            `json:"id"`
	Code                    string            `json:"code"`
	PromoType               promo.PromoType   `json:"promo_type"`
	AmountOff               int64             `json:"amount_off"`
	Currency                string            `json:"currency,omitempty"`
	Duration                promo.Duration    `json:"duration"`
	DurationMonths          int               `json:"duration_months,omitempty"`
	ExpiresAt               *time.Time        `json:"expires_at,omitempty"`
	NewUsersOnly            bool              `json:"new_users_only,omitempty"`
	ExistingMembershipsOnly bool              `json:"existing_memberships_only,omitempty"`
	PlanIDs                 []string          `json:"plan_ids,omitempty"`
	PlanProducts            []string          `json:"plan_products,omitempty"`
	UnlimitedStock          bool              `json:"unlimited_stock,omitempty"`
	Status                  promo.Status      `json:"status"`
	StatusReason            string            `json:"status_reason,omitempty"`
	Metadata                map[string]string `json:"metadata,omitempty"`
	CreatedAt               time.Time         `json:"created_at"`
	UpdatedAt               time.Time         `json:"updated_at"`
	Stripe                  stripeRecord      `json:"stripe"`
}

type stripeRecord struct {
	CouponID        string          `json:"coupon_id,omitempty"`
	PromotionCodeID string          `json:"promotion_code_id,omitempty"`
	Active          bool            `json:"active,omitempty"`
	ExpiresAt       *time.Time      `json:"expires_at,omitempty"`
	State           promo.SyncState `json:"state"`
	Owner           string          `json:"owner,omitempty"`
	LeaseUntil      time.Time       `json:"lease_until,omitzero"`
	ActiveSwitches  int             `json:"active_switches,omitempty"`
}

// codeFields renders the hash fields of p, excluding the counters unless
// withStock (stock) is set. The other counters (reserved, held, uses,
// stripe_redeemed, amt:<currency>) are only ever changed by scripts.
func codeFields(p *promo.PromoCode, withStock bool) ([]any, error) {
	r := record{
		ID: p.ID, Code: p.Code, PromoType: p.PromoType, AmountOff: p.AmountOff, Currency: p.Currency,
		Duration: p.Duration, DurationMonths: p.DurationMonths, ExpiresAt: p.ExpiresAt,
		NewUsersOnly: p.NewUsersOnly, ExistingMembershipsOnly: p.ExistingMembershipsOnly,
		PlanIDs: p.PlanIDs, PlanProducts: p.PlanProducts, UnlimitedStock: p.UnlimitedStock,
		Status: p.Status, StatusReason: p.StatusReason, Metadata: p.Metadata, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt,
		Stripe: stripeRecord{
			CouponID: p.Stripe.CouponID, PromotionCodeID: p.Stripe.PromotionCodeID, Active: p.Stripe.Active,
			ExpiresAt: p.Stripe.ExpiresAt, State: p.Stripe.State, Owner: p.Stripe.Owner, LeaseUntil: p.Stripe.LeaseUntil,
			ActiveSwitches: p.Stripe.ActiveSwitches,
		},
	}
	doc, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	expires := int64(0)
	if p.ExpiresAt != nil {
		expires = p.ExpiresAt.UnixMilli()
	}
	f := []any{"doc", doc, "status", string(p.Status), "state", string(p.Stripe.State),
		"unlimited", boolInt(p.UnlimitedStock), "expires_ms", expires}
	if withStock {
		f = append(f, "stock", p.Stock)
	}
	return f, nil
}

// decodeCode builds a promo code from its hash (HGETALL result).
func decodeCode(h map[string]string) (*promo.PromoCode, error) {
	doc, ok := h["doc"]
	if !ok {
		return nil, promo.ErrNotFound
	}
	var r record
	if err := json.Unmarshal([]byte(doc), &r); err != nil {
		return nil, err
	}
	p := &promo.PromoCode{
		ID: r.ID, Code: r.Code, PromoType: r.PromoType, AmountOff: r.AmountOff, Currency: r.Currency,
		Duration: r.Duration, DurationMonths: r.DurationMonths, ExpiresAt: r.ExpiresAt,
		NewUsersOnly: r.NewUsersOnly, ExistingMembershipsOnly: r.ExistingMembershipsOnly,
		PlanIDs: r.PlanIDs, PlanProducts: r.PlanProducts, UnlimitedStock: r.UnlimitedStock,
		Status: r.Status, StatusReason: r.StatusReason, Metadata: r.Metadata, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
		Stock: atoi(h["stock"]), Reserved: atoi(h["reserved"]), Held: atoi(h["held"]), Uses: atoi(h["uses"]),
		Discounted: discounted(h),
		Stripe: promo.StripeRefs{
			CouponID: r.Stripe.CouponID, PromotionCodeID: r.Stripe.PromotionCodeID, Active: r.Stripe.Active,
			ExpiresAt: r.Stripe.ExpiresAt, State: r.Stripe.State, Owner: r.Stripe.Owner, LeaseUntil: r.Stripe.LeaseUntil,
			ActiveSwitches: r.Stripe.ActiveSwitches, TimesRedeemed: atoi(h["stripe_redeemed"]),
		},
	}
	if p.Metadata == nil {
		p.Metadata = map[string]string{}
	}
	return p, nil
}

// amountPrefix starts the counter fields of discounted amounts per currency.
const amountPrefix = "amt:"

// discounted reads the amt:<currency> counters of a code hash.
func discounted(h map[string]string) map[string]int64 {
	var out map[string]int64
	for k, v := range h {
		if cur, ok := strings.CutPrefix(k, amountPrefix); ok {
			if out == nil {
				out = map[string]int64{}
			}
			out[cur] = atoi(v)
		}
	}
	return out
}

func atoi(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
