package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/billing-adapter/billing-adapter/internal/redisstore"
	"github.com/billing-adapter/billing-adapter/internal/stripegw"
)

// catalogCheckLimit bounds the codes checked at start (one Stripe call each).
const catalogCheckLimit = 100

// checkCatalog runs once at start: it reads the Stripe coupon of each code
// in the catalog (active and inactive, up to catalogCheckLimit) and, when the
// configured Stripe does not have some of them, says so in one warning that
// names `reconcile` as the way out. That is the case after the local
// simulator's state was lost or reset while Redis kept the catalog, or when
// STRIPE_SECRET_KEY now names another account. A failing Stripe call stops
// the check (nothing is claimed missing on an error).
func checkCatalog(ctx context.Context, store *redisstore.Store, gw *stripegw.Gateway, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var missing []string
	checked, after := 0, ""
	for checked < catalogCheckLimit {
		page, err := store.List(ctx, promo.ListFilter{Limit: min(100, catalogCheckLimit-checked), StartingAfter: after})
		if err != nil {
			log.Debug("catalog check skipped: Redis", "err", err.Error())
			return
		}
		for _, p := range page.Data {
			checked++
			if p.Stripe.CouponID == "" {
				continue
			}
			found, err := gw.GetCoupon(ctx, p.Stripe.CouponID)
			if err != nil {
				log.Debug("catalog check stopped: Stripe", "err", err.Error())
				return
			}
			if !found {
				missing = append(missing, p.ID+" ("+p.Code+")")
			}
		}
		if !page.HasMore || len(page.Data) == 0 {
			break
		}
		after = page.Data[len(page.Data)-1].ID
	}
	if len(missing) == 0 {
		return
	}
	log.Warn("the catalog in Redis refers to Stripe coupons and promotion codes that the configured Stripe does not have: "+
		"its codes cannot be validated, applied or archived. Run `billing-adapter reconcile` to see the drift and "+
		"`billing-adapter reconcile -fix` to make Redis follow this Stripe (codes without a coupon become inactive); "+
		"locally, `make reset` starts a fresh world",
		"missing", len(missing), "checked", checked, "codes", missing[:min(len(missing), 10)])
}
