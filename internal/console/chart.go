package console

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// chart is the code page's monthly chart, drawn as inline SVG by the
// template (no script): redemptions made per month (by created_at) and the
// discount of paid invoices per month, by the month of the redemption's
// first paid discounted invoice (activated_at), in the main currency.
type chart struct {
	Months    []chartMonth
	Currency  string // the currency with the largest discounted total
	Others    []string
	MaxCount  int64
	MaxAmount int64
	Truncated bool // more ledger lines than were read
	Width     int
}

type chartMonth struct {
	Label       string
	Count       int64
	Amount      int64
	AmountText  string
	X           int
	CountH      int
	CountY      int
	AmountH     int
	AmountY     int
	CountLabelY int
}

const (
	chartMonths = 12
	chartBarW   = 36
	chartGap    = 14
	chartHeight = 120
)

func monthlyChart(lines []redemptionJSON, now time.Time, truncated bool) *chart {
	// The window ends at the later of now and the newest time in the ledger
	// (Stripe test clocks run ahead of the wall clock).
	for _, l := range lines {
		for _, ts := range []*string{&l.CreatedAt, l.ActivatedAt} {
			if ts != nil {
				if t, err := time.Parse(time.RFC3339, *ts); err == nil && t.After(now) {
					now = t
				}
			}
		}
	}
	now = now.UTC()
	start := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -(chartMonths - 1), 0)
	idx := func(ts string) int {
		t, err := time.Parse(time.RFC3339, ts)
		if err != nil || t.Before(start) {
			return -1
		}
		i := (t.Year()-start.Year())*12 + int(t.Month()-start.Month())
		if i >= chartMonths {
			return -1
		}
		return i
	}
	totals := map[string]int64{}
	for _, l := range lines {
		for cur, v := range l.DiscountedAmounts {
			totals[cur] += v
		}
	}
	c := &chart{Truncated: truncated, Width: chartMonths*(chartBarW+chartGap) + chartGap}
	curs := make([]string, 0, len(totals))
	for cur := range totals {
		curs = append(curs, cur)
	}
	sort.Slice(curs, func(i, j int) bool {
		if totals[curs[i]] != totals[curs[j]] {
			return totals[curs[i]] > totals[curs[j]]
		}
		return curs[i] < curs[j]
	})
	if len(curs) > 0 {
		c.Currency = curs[0]
		for _, o := range curs[1:] {
			c.Others = append(c.Others, strings.ToUpper(o))
		}
	}
	c.Months = make([]chartMonth, chartMonths)
	for i := range c.Months {
		c.Months[i].Label = start.AddDate(0, i, 0).Format("Jan 06")
	}
	for _, l := range lines {
		if i := idx(l.CreatedAt); i >= 0 {
			c.Months[i].Count++
		}
		if l.ActivatedAt != nil && c.Currency != "" {
			if i := idx(*l.ActivatedAt); i >= 0 {
				c.Months[i].Amount += l.DiscountedAmounts[c.Currency]
			}
		}
	}
	for _, m := range c.Months {
		c.MaxCount, c.MaxAmount = max(c.MaxCount, m.Count), max(c.MaxAmount, m.Amount)
	}
	for i := range c.Months {
		m := &c.Months[i]
		m.X = chartGap + i*(chartBarW+chartGap)
		m.CountH = scale(m.Count, c.MaxCount)
		m.CountY = chartHeight - m.CountH
		m.CountLabelY = max(m.CountY-4, 10)
		m.AmountH = scale(m.Amount, c.MaxAmount)
		m.AmountY = chartHeight - m.AmountH
		if m.Amount > 0 {
			m.AmountText = formatMinor(m.Amount, c.Currency)
		}
	}
	return c
}

func scale(v, maxV int64) int {
	if maxV == 0 || v == 0 {
		return 0
	}
	return max(int(v*(chartHeight-16)/maxV), 2)
}

// CurrencyUpper is the chart currency for display.
func (c *chart) CurrencyUpper() string { return strings.ToUpper(c.Currency) }

// Total redemptions shown.
func (c *chart) Total() string {
	var n int64
	for _, m := range c.Months {
		n += m.Count
	}
	return fmt.Sprint(n)
}
