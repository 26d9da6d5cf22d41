package telemetry

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Business metrics: what happens to promo codes, not to HTTP requests.
// Every label has a closed set of values (operations, outcomes, the
// service's error codes, the webhook event types it handles plus "other"),
// so cardinality stays bounded; the per-code stock gauge, whose labels grow
// with the catalog, is only there when EnableCodeStock was called.
type business struct {
	registry    *prometheus.Registry
	redemptions *prometheus.CounterVec
	webhooks    *prometheus.CounterVec
	webhookLag  *prometheus.HistogramVec
	// resolved children of redemptions and of webhooks/webhookLag
	redemptionChildren *children[labels3, prometheus.Counter]
	webhookChildren    *children[labels3, webhookChild]
}

func newBusiness(r *prometheus.Registry) business {
	b := business{
		registry: r, redemptionChildren: &children[labels3, prometheus.Counter]{},
		webhookChildren: &children[labels3, webhookChild]{},
		redemptions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "billing_redemptions_total",
			Help: "Redemption requests by operation (validate, subscribe, apply, remove), outcome (ok, refused, error) and reason (the refusal or error code; \"\" when ok).",
		}, []string{"operation", "outcome", "reason"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "billing_webhook_events_total",
			Help: "Stripe webhook deliveries by event type (the handled types, \"other\", or \"unknown\" before the event could be read) and result (processed, duplicate, ignored, in_flight, failed, rejected).",
		}, []string{"type", "result"}),
		webhookLag: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "billing_webhook_lag_seconds",
			Help:    "Time from a Stripe event's created to the end of its processing, by event type (processed events only).",
			Buckets: []float64{.1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, 3 * 24 * 3600},
		}, []string{"type"}),
	}
	r.MustRegister(b.redemptions, b.webhooks, b.webhookLag)
	return b
}

// ObserveRedemption counts one redemption request.
func (m *Metrics) ObserveRedemption(operation, outcome, reason string) {
	if m == nil {
		return
	}
	m.redemptionChildren.get(labels3{operation, outcome, reason}, func() prometheus.Counter {
		return m.redemptions.WithLabelValues(operation, outcome, reason)
	}).Inc()
}

// ObserveWebhook counts one delivery; lag (event created → processed) is
// recorded for processed events.
func (m *Metrics) ObserveWebhook(eventType, result string, lag time.Duration) {
	if m == nil {
		return
	}
	ch := m.webhookChildren.get(labels3{a: eventType, b: result}, func() webhookChild {
		c := webhookChild{events: m.webhooks.WithLabelValues(eventType, result)}
		if result == "processed" {
			c.lag = m.webhookLag.WithLabelValues(eventType)
		}
		return c
	})
	ch.events.Inc()
	if ch.lag != nil {
		ch.lag.Observe(lag.Seconds())
	}
}

// CodeStock is one code's counters for the opt-in per-code gauges.
type CodeStock struct {
	Code      string
	Stock     int64 // -1 when unlimited (not exported)
	Reserved  int64
	Uses      int64
	Unlimited bool
}

// MaxCodeStockSeries bounds the per-code gauges even when enabled.
const MaxCodeStockSeries = 1000

// EnableCodeStock adds billing_promo_code_stock, _reserved and _uses per
// active code (label code), read by list at each scrape (at most
// MaxCodeStockSeries codes). Off by default: its label set grows with the
// catalog (METRICS_CODE_STOCK=true turns it on).
func (m *Metrics) EnableCodeStock(list func(ctx context.Context, max int) ([]CodeStock, error)) {
	if m == nil {
		return
	}
	m.registry.MustRegister(&codeStockCollector{list: list})
}

var (
	codeStockDesc    = prometheus.NewDesc("billing_promo_code_stock", "Units of stock left per active code (limited codes only).", []string{"code"}, nil)
	codeReservedDesc = prometheus.NewDesc("billing_promo_code_reserved", "Units held by applies in flight per active code.", []string{"code"}, nil)
	codeUsesDesc     = prometheus.NewDesc("billing_promo_code_uses", "Redemptions that reached a paid discounted invoice, per active code.", []string{"code"}, nil)
	codeStockErrDesc = prometheus.NewDesc("billing_promo_code_stock_scrape_errors", "1 when the per-code gauges could not be read at this scrape.", nil, nil)
)

type codeStockCollector struct {
	list func(ctx context.Context, max int) ([]CodeStock, error)
}

func (c *codeStockCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- codeStockDesc
	ch <- codeReservedDesc
	ch <- codeUsesDesc
	ch <- codeStockErrDesc
}

func (c *codeStockCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	codes, err := c.list(ctx, MaxCodeStockSeries)
	failed := 0.0
	if err != nil {
		failed = 1
	}
	ch <- prometheus.MustNewConstMetric(codeStockErrDesc, prometheus.GaugeValue, failed)
	for _, cs := range codes {
		if !cs.Unlimited {
			ch <- prometheus.MustNewConstMetric(codeStockDesc, prometheus.GaugeValue, float64(cs.Stock), cs.Code)
		}
		ch <- prometheus.MustNewConstMetric(codeReservedDesc, prometheus.GaugeValue, float64(cs.Reserved), cs.Code)
		ch <- prometheus.MustNewConstMetric(codeUsesDesc, prometheus.GaugeValue, float64(cs.Uses), cs.Code)
	}
}
