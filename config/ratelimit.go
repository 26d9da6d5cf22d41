package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// RateLimit is N requests per Period (a burst of N, refilled evenly); the
// zero value is off.
type RateLimit struct {
	N      int
	Period time.Duration // time.Second, time.Minute or time.Hour
}

// Off reports whether the limit is disabled.
func (r RateLimit) Off() bool { return r.N == 0 }

var ratePeriods = map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}

// String renders the limit as it is configured: "20/m", or "off".
func (r RateLimit) String() string {
	if r.Off() {
		return "off"
	}
	for unit, d := range ratePeriods {
		if d == r.Period {
			return strconv.Itoa(r.N) + "/" + unit
		}
	}
	return fmt.Sprintf("%d/%s", r.N, r.Period)
}

// parseRate reads "N/s", "N/m", "N/h" or "off".
func parseRate(v string) (RateLimit, error) {
	if strings.EqualFold(v, "off") {
		return RateLimit{}, nil
	}
	n, unit, ok := strings.Cut(v, "/")
	period, known := ratePeriods[strings.ToLower(strings.TrimSpace(unit))]
	count, err := strconv.Atoi(strings.TrimSpace(n))
	if !ok || !known || err != nil {
		return RateLimit{}, fmt.Errorf("%q is not N/s, N/m, N/h or off", v)
	}
	return RateLimit{N: count, Period: period}, nil
}

func mustRate(v string) RateLimit {
	r, err := parseRate(v)
	if err != nil {
		panic(err)
	}
	return r
}

func loadRate(get func(string) string, p *problems, name string, dst *RateLimit) {
	v := get(name)
	if v == "" {
		return
	}
	r, err := parseRate(v)
	if err != nil {
		p.add(name, "%s", err.Error())
		return
	}
	if r.Off() && !strings.EqualFold(v, "off") {
		p.add(name, "%d requests is out of range 1..%d (off disables the limit)", r.N, maxRateLimitCount)
		return
	}
	*dst = r
}

func (r RateLimit) check(p *problems, name string) {
	if r.Off() {
		return
	}
	if r.N < 1 || r.N > maxRateLimitCount {
		p.add(name, "%d requests is out of range 1..%d", r.N, maxRateLimitCount)
	}
	switch r.Period {
	case time.Second, time.Minute, time.Hour:
	default:
		p.add(name, "period %s is not a second, a minute or an hour", r.Period)
	}
}
