package telemetry

import "github.com/prometheus/client_golang/prometheus"

// campaignIndex: the per-replica index of campaign code texts
// (internal/redisstore/cmpindex.go). Labels have closed sets.
type campaignIndex struct {
	codes     prometheus.Gauge
	campaigns prometheus.Gauge
	hits      prometheus.Counter
	misses    prometheus.Counter
	loads     *prometheus.CounterVec
}

func newCampaignIndex(r *prometheus.Registry) campaignIndex {
	c := campaignIndex{
		codes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "billing_campaign_index_codes",
			Help: "Campaign code texts this replica holds in memory (CAMPAIGN_CODE_INDEX bounds it).",
		}),
		campaigns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "billing_campaign_index_campaigns",
			Help: "Campaigns whose code texts this replica holds in memory.",
		}),
		loads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "billing_campaign_index_loads_total",
			Help: "Loads of a campaign's committed codes into the index by outcome (loaded, refreshed, unchanged, too_large, failed, stale) and evictions (evicted).",
		}, []string{"outcome"}),
	}
	lookups := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "billing_campaign_index_lookups_total",
		Help: "Code texts looked up in the campaign code index (texts the promo code hint did not know) by result: hit (answered without the text key) or miss.",
	}, []string{"result"})
	c.hits, c.misses = lookups.WithLabelValues("hit"), lookups.WithLabelValues("miss")
	r.MustRegister(c.codes, c.campaigns, c.loads, lookups)
	return c
}

// CampaignIndexSize sets how many campaigns and code texts the index holds.
func (m *Metrics) CampaignIndexSize(campaigns, codes int) {
	if m == nil {
		return
	}
	m.cidx.campaigns.Set(float64(campaigns))
	m.cidx.codes.Set(float64(codes))
}

// CampaignIndexLookup counts one lookup.
func (m *Metrics) CampaignIndexLookup(hit bool) {
	if m == nil {
		return
	}
	if hit {
		m.cidx.hits.Inc()
	} else {
		m.cidx.misses.Inc()
	}
}

// CampaignIndexLoad counts one load or eviction by outcome.
func (m *Metrics) CampaignIndexLoad(outcome string) {
	if m == nil {
		return
	}
	m.cidx.loads.WithLabelValues(outcome).Inc()
}
