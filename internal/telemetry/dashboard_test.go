package telemetry

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestGrafanaDashboard: docs/grafana-dashboard.json is valid JSON and every
// metric its queries use is one the service exports.
func TestGrafanaDashboard(t *testing.T) {
	raw, err := os.ReadFile("../../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	m := New()
	m.EnableCodeStock(func(context.Context, int) ([]CodeStock, error) {
		return []CodeStock{{Code: "X", Stock: 1}}, nil
	})
	m.ObserveRedemption("apply", "ok", "")
	m.ObserveWebhook("invoice.paid", "processed", time.Second)
	m.ObserveStripe("price.retrieve", "ok", time.Millisecond)
	m.ObserveHTTP("GET", "/healthz", 200, time.Millisecond)
	m.RedisError("get")
	families, err := m.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, f := range families {
		exported[f.GetName()] = true
	}
	name := regexp.MustCompile(`billing_[a-z_]+`)
	queries := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			queries++
			for _, n := range name.FindAllString(tg.Expr, -1) {
				base := n
				for _, suf := range []string{"_bucket", "_count", "_sum"} {
					base = strings.TrimSuffix(base, suf)
				}
				if !exported[base] {
					t.Errorf("panel %q queries %s, which the service does not export", p.Title, n)
				}
			}
		}
	}
	if queries < 10 {
		t.Errorf("only %d queries", queries)
	}
}
