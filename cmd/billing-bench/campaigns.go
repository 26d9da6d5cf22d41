package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"time"

	"github.com/billing-adapter/billing-adapter/config"
	"github.com/billing-adapter/billing-adapter/internal/benchkit"
	"github.com/billing-adapter/billing-adapter/internal/httpapi"
	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/billing-adapter/billing-adapter/internal/redisstore"
	"github.com/oklog/ulid/v2"
	"github.com/redis/go-redis/v9"
)

// validate-campaign: validate of campaign codes (a campaign of 10,000, each
// request a code of it), no preview, customers from a pool of 10,000: the
// same requests as validate with a promo code, so the two rates compare.
func prepareValidateCampaign(ctx context.Context, e *env, total int) ([]request, error) {
	var c struct {
		ID string `json:"id"`
	}
	body := []byte(`{"name":"bench","count":10000,"promo_type":"percentage","amount_off":10}`)
	if err := e.call(ctx, "POST", "/v1/campaigns", adminSecret, e.runID+"-campaign", body, &c); err != nil {
		return nil, err
	}
	codes, err := e.campaignCodes(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	h := jsonHeader(checkoutSecret, "")
	out := make([]request, total)
	for i := range out {
		out[i] = request{method: "POST", path: "/v1/promo_codes/validate", header: h,
			body: benchkit.ValidateBody(codes[i%len(codes)], benchkit.FakeCustomer(i%10000))}
	}
	return out, nil
}

// campaignCodes waits for a campaign's codes and reads them from the export.
func (e *env) campaignCodes(ctx context.Context, id string) ([]string, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var c struct {
			State string `json:"state"`
		}
		if err := e.call(ctx, "GET", "/v1/campaigns/"+id, adminSecret, "", nil, &c); err != nil {
			return nil, err
		}
		if c.State == "ready" {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("campaign %s not generated after 2 minutes", id)
		}
		time.Sleep(50 * time.Millisecond)
	}
	req, err := http.NewRequestWithContext(ctx, "GET", e.st.URL+"/v1/campaigns/"+id+"/codes.csv", nil)
	if err != nil {
		return nil, err
	}
	req.Header = jsonHeader(adminSecret, "")
	resp, err := e.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	rows, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil {
		return nil, err
	}
	var codes []string
	for _, r := range rows[1:] {
		codes = append(codes, r[0])
	}
	return codes, nil
}

// CampaignBench is the campaigns measurement: generation time, Redis
// memory per unredeemed code and the export's memory, per campaign size.
type CampaignBench struct {
	Runs []CampaignRun `json:"runs"`
}

// CampaignRun is one campaign of Codes codes.
type CampaignRun struct {
	Codes int `json:"codes"`
	// GenerateSeconds: from the campaign's record to its last code, by one
	// worker (promo.Campaigns.Generate) against the fresh redis-server.
	GenerateSeconds float64 `json:"generate_seconds"`
	// UsedBytesPerCode: INFO used_memory delta over the generation / Codes
	// (the text keys, the chunks, the campaign's record).
	UsedBytesPerCode float64 `json:"used_bytes_per_code"`
	// Export: GET codes.csv over loopback HTTP, in-process handler.
	ExportSeconds float64 `json:"export_seconds"`
	ExportBytes   int64   `json:"export_bytes"`
	// ExportPeakHeapMB: the highest Go heap (live and not yet collected
	// objects, sampled every 2 ms) during the export minus before it;
	// constant memory means it does not grow with Codes.
	ExportPeakHeapMB float64 `json:"export_peak_heap_mb"`
}

// measureCampaigns generates campaigns of each size on its own fresh
// redis-server (url), in this process, and exports each.
func measureCampaigns(ctx context.Context, url string, sizes []int, progress io.Writer) (*CampaignBench, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		return nil, err
	}
	store := redisstore.New(rdb, nil)
	log := slog.New(slog.DiscardHandler)
	cs := &promo.Campaigns{Store: store, Gateway: &fakeStripe{coupon: map[string]string{}}, Clock: promo.SystemClock{},
		Log: log, NewID: func() string { return "cmp_" + ulid.Make().String() }}
	const secret = "bench_admin_secret_0123456789"
	srv := httptest.NewServer(httpapi.New(httpapi.Options{Campaigns: cs, Log: log,
		APIKeys: []config.APIKey{{Name: "admin", Scope: config.ScopeAdmin, Secret: secret}}}))
	defer srv.Close()
	out := &CampaignBench{}
	for i, n := range sizes {
		fmt.Fprintf(progress, "campaigns: generating %d codes...\n", n)
		c, err := cs.Create(ctx, promo.CampaignInput{Name: "bench", Count: int64(n),
			Terms: promo.CreateInput{PromoType: promo.Percentage, AmountOff: "10"}}, fmt.Sprintf("bench-campaign-%d", i))
		if err != nil {
			return nil, err
		}
		m0, err := usedMemory(ctx, rdb)
		if err != nil {
			return nil, err
		}
		start := time.Now()
		if err := cs.Generate(ctx, "bench"); err != nil {
			return nil, err
		}
		run := CampaignRun{Codes: n, GenerateSeconds: time.Since(start).Seconds()}
		m1, err := usedMemory(ctx, rdb)
		if err != nil {
			return nil, err
		}
		run.UsedBytesPerCode = float64(m1-m0) / float64(n)
		if run.ExportSeconds, run.ExportBytes, run.ExportPeakHeapMB, err = exportOnce(ctx, srv.URL+"/v1/campaigns/"+c.ID+"/codes.csv", secret, n); err != nil {
			return nil, err
		}
		out.Runs = append(out.Runs, run)
	}
	return out, nil
}

// exportOnce downloads one export, checks its line count and samples the
// heap while it streams.
func exportOnce(ctx context.Context, url, secret string, n int) (float64, int64, float64, error) {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	heap := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	before := heap()
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			if h := heap(); h > peak.Load() {
				peak.Store(h)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	start := time.Now()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		close(stop)
		return 0, 0, 0, err
	}
	defer resp.Body.Close()
	var size int64
	lines := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		size += int64(len(sc.Bytes()) + 1)
		lines++
	}
	elapsed := time.Since(start).Seconds()
	close(stop)
	<-sampled
	if err := sc.Err(); err != nil || resp.StatusCode != 200 || lines != n+1 {
		return 0, 0, 0, fmt.Errorf("export: status %d, %d lines for %d codes: %v", resp.StatusCode, lines, n, err)
	}
	grow := float64(int64(peak.Load())-int64(before)) / (1 << 20)
	return elapsed, size, max(grow, 0), nil
}

// campaignSizes are the campaign sizes of the measurement: the issue's
// 100,000 and a tenth of it, whose export memory must be the same.
var campaignSizes = []int{10_000, 100_000}

func fmtCampaigns(w io.Writer, c *CampaignBench) {
	fmt.Fprintln(w, "\nCampaigns (one worker generating, fresh redis-server; export over loopback, in-process handler):")
	var b strings.Builder
	fmt.Fprintf(&b, "  %-8s %-12s %-16s %-12s %-12s %s\n", "codes", "generate", "Redis B/code", "export", "export size", "export heap peak")
	for _, r := range c.Runs {
		fmt.Fprintf(&b, "  %-8d %-12s %-16.0f %-12s %-12s %.1f MB\n", r.Codes, fmt.Sprintf("%.2f s", r.GenerateSeconds),
			r.UsedBytesPerCode, fmt.Sprintf("%.2f s", r.ExportSeconds), fmt.Sprintf("%.1f MB", float64(r.ExportBytes)/(1<<20)),
			r.ExportPeakHeapMB)
	}
	fmt.Fprint(w, b.String())
}
