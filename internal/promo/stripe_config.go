package promo

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// MetaConfig is the coupon metadata key holding the adapter's own settings of
// a code (StripeConfig as JSON). With it, Stripe holds everything needed to
// rebuild the catalog: the coupon has the amount and duration, the promotion
// code the text, expiry and new_users_only, and this key the rest.
const MetaConfig = "promo_code_config"

// maxMetadataValue is Stripe's limit on one metadata value.
const maxMetadataValue = 500

// StripeConfig is what Stripe's coupon and promotion code cannot express.
type StripeConfig struct {
	Version int    `json:"v"`
	Status  Status `json:"st"`
	// StatusReason says why the adapter made a code inactive by itself.
	StatusReason string `json:"why,omitempty"`
	// Limit is stock plus the units held by redemptions: stock left can be
	// rebuilt as Limit minus the redemptions Stripe shows. Nil = unlimited.
	Limit                   *int64    `json:"lim,omitempty"`
	ExistingMembershipsOnly bool      `json:"emo,omitempty"`
	PlanIDs                 []string  `json:"plans,omitempty"`
	CreatedAt               time.Time `json:"c"`
}

// StripeConfigOf is the config the code's coupon must carry.
func StripeConfigOf(p *PromoCode) StripeConfig {
	c := StripeConfig{Version: 1, Status: p.Status, StatusReason: p.StatusReason,
		ExistingMembershipsOnly: p.ExistingMembershipsOnly, PlanIDs: p.PlanIDs, CreatedAt: p.CreatedAt.UTC()}
	if !p.UnlimitedStock {
		lim := p.Stock + p.Held
		c.Limit = &lim
	}
	return c
}

// Encode renders the config for Stripe metadata.
func (c StripeConfig) Encode() string {
	b, err := json.Marshal(c)
	if err != nil { // cannot happen: plain fields
		panic(err)
	}
	return string(b)
}

// ParseStripeConfig reads a coupon's config metadata.
func ParseStripeConfig(s string) (StripeConfig, error) {
	var c StripeConfig
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return c, fmt.Errorf("%s metadata: %w", MetaConfig, err)
	}
	if c.Version != 1 {
		return c, fmt.Errorf("%s metadata: unknown version %d", MetaConfig, c.Version)
	}
	return c, nil
}

// checkStripeConfigFits refuses a code whose config would not fit one Stripe
// metadata value in the longest form it can take, at create or after any
// update: the longest status with a status reason, the largest stock limit,
// the creation time with nanoseconds. Only plan_ids can make it too long:
// the rest takes at most 138 characters, so MaxPlanIDs (10) price IDs of up
// to 33 characters always fit (Stripe's are 30: 467 characters in all).
func checkStripeConfigFits(p *PromoCode) *Error {
	if n := len(longestStripeConfig(p).Encode()); n > maxMetadataValue {
		return Invalid("plan_ids", "plan_ids is too long to record in Stripe (up to %d characters of metadata with the code's settings, Stripe allows %d); list fewer prices",
			n, maxMetadataValue)
	}
	return nil
}

// longestStripeConfig is p's config with every field that may change after
// create at its longest.
func longestStripeConfig(p *PromoCode) StripeConfig {
	c := StripeConfigOf(p)
	for _, st := range []Status{StatusActive, StatusInactive, StatusArchived} {
		if len(st) > len(c.Status) {
			c.Status = st
		}
	}
	c.StatusReason = ReasonCouponDeleted // the only one
	limit := int64(math.MaxInt64)
	c.Limit = &limit
	c.CreatedAt = time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC)
	return c
}
