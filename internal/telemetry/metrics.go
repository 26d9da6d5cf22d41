// Package telemetry holds the service's Prometheus metrics on a private
// registry: HTTP requests by route and status, Stripe calls by operation and
// outcome, and Redis errors. Every method is safe on a nil *Metrics. It also
// holds LogBuffer, which writes the service's log lines in batches.
package telemetry

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the set of collectors the adapters report to.
type Metrics struct {
	registry     *prometheus.Registry
	httpRequests *prometheus.CounterVec
	httpLatency  *prometheus.HistogramVec
	stripeCalls  *prometheus.CounterVec
	stripeTime   *prometheus.HistogramVec
	redisErrors  *prometheus.CounterVec
	httpChildren children[httpLabels, httpChild]
	business
	cidx campaignIndex
}

// New registers the collectors (plus Go and process collectors).
func New() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "billing_http_requests_total", Help: "HTTP requests by method, route and status.",
		}, []string{"method", "route", "status"}),
		httpLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "billing_http_request_duration_seconds", Help: "HTTP request latency by method, route and status.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "route", "status"}),
		stripeCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "billing_stripe_calls_total", Help: "Stripe API calls by operation and outcome (ok, or the Stripe error type).",
		}, []string{"operation", "outcome"}),
		stripeTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "billing_stripe_call_duration_seconds", Help: "Stripe API call latency by operation.",
			Buckets: prometheus.DefBuckets,
		}, []string{"operation"}),
		redisErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "billing_redis_errors_total", Help: "Redis command errors by command.",
		}, []string{"command"}),
	}
	m.registry.MustRegister(m.httpRequests, m.httpLatency, m.stripeCalls, m.stripeTime, m.redisErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.business = newBusiness(m.registry)
	m.cidx = newCampaignIndex(m.registry)
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// ObserveHTTP records one finished request.
func (m *Metrics) ObserveHTTP(method, route string, status int, d time.Duration) {
	if m == nil {
		return
	}
	ch := m.httpChildren.get(httpLabels{method, route, status}, func() httpChild {
		s := strconv.Itoa(status)
		return httpChild{m.httpRequests.WithLabelValues(method, route, s), m.httpLatency.WithLabelValues(method, route, s)}
	})
	ch.requests.Inc()
	ch.latency.Observe(d.Seconds())
}

// ObserveStripe records one Stripe call; outcome is "ok" or an error kind.
func (m *Metrics) ObserveStripe(operation, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.stripeCalls.WithLabelValues(operation, outcome).Inc()
	m.stripeTime.WithLabelValues(operation).Observe(d.Seconds())
}

// RedisError counts one failed Redis command.
func (m *Metrics) RedisError(command string) {
	if m == nil {
		return
	}
	m.redisErrors.WithLabelValues(command).Inc()
}
