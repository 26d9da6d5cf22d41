package promo

import (
	"encoding/json"
	"fmt"
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
// metadata value; only a long plan_ids list can make it too long.
func checkStripeConfigFits(p *PromoCode) *Error {
	if n := len(StripeConfigOf(p).Encode()); n > maxMetadataValue {
		return Invalid("plan_ids", "plan_ids is too long to record in Stripe (%d characters of metadata, Stripe allows %d); list fewer prices",
			n, maxMetadataValue)
	}
	return nil
}
