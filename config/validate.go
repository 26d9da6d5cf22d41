package config

import (
	"errors"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Stripe key prefixes accepted in STRIPE_SECRET_KEY.
var stripeKeyPrefixes = []string{"sk_test_", "sk_live_", "rk_test_", "rk_live_"}

const webhookSecretPrefix = "whsec_"

// Validate re-checks a Config (used by Load and after flags override fields).
// It returns all problems joined with errors.Join, each naming the variable
// the field comes from, or nil.
func (c Config) Validate() error { return c.problems().join() }

func (c Config) problems() problems {
	var p problems
	c.checkAddr(&p)
	c.checkRedis(&p)
	c.checkStripe(&p)
	if c.StripeMaxRetries < minStripeMaxRetries || c.StripeMaxRetries > maxStripeMaxRetries {
		p.add(envStripeMaxRetries, "%d is out of range %d..%d", c.StripeMaxRetries, minStripeMaxRetries, maxStripeMaxRetries)
	}
	checkRange(&p, envStripeTimeout, c.StripeTimeout, minStripeTimeout, maxStripeTimeout)
	c.checkWebhookSecrets(&p)
	c.checkAPIKeys(&p)
	checkRange(&p, envIdempotencyTTL, c.IdempotencyTTL, minIdempotencyTTL, maxIdempotencyTTL)
	checkRange(&p, envRequestTimeout, c.RequestTimeout, minRequestTimeout, maxRequestTimeout)
	checkRange(&p, envSweepLease, c.SweepLease, minSweepLease, maxSweepLease)
	if c.SweepLease <= c.RequestLease() && c.RequestTimeout >= minRequestTimeout && c.SweepLease >= minSweepLease {
		p.add(envSweepLease, "%s must exceed REQUEST_TIMEOUT (%s) by a third, or the sweeper could settle a reservation whose request still runs",
			fmtDur(c.SweepLease), fmtDur(c.RequestTimeout))
	}
	checkRange(&p, envShutdownTimeout, c.ShutdownTimeout, minShutdownTimeout, maxShutdownTimeout)
	checkRange(&p, envCampaignLease, c.CampaignLease, minCampaignLease, maxCampaignLease)
	c.MirrorRate.check(&p, envMirrorRate)
	if c.CampaignIndex < 0 || c.CampaignIndex > maxCampaignIndex {
		p.add(envCampaignIndex, "%d codes is out of range 0..%d (0 or off disables the index)", c.CampaignIndex, maxCampaignIndex)
	}
	if c.ValidateCodeAge < 0 || c.ValidateCodeAge > maxValidateCodeAge {
		p.add(envValidateCodeAge, "%s is out of range 0..%s (0 reads the code from Redis on every validate)", fmtDur(c.ValidateCodeAge), fmtDur(maxValidateCodeAge))
	}
	c.RateLimitKey.check(&p, envRateLimitKey)
	c.RateLimitCust.check(&p, envRateLimitCust)
	switch c.LogLevel {
	case slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError:
	default:
		p.add(envLogLevel, "%s is not one of debug, info, warn, error", c.LogLevel)
	}
	if c.LogFlush < 0 || c.LogFlush > maxLogFlush {
		p.add(envLogFlush, "%s is out of range 0..%s (0 writes each log line at once)", fmtDur(c.LogFlush), fmtDur(maxLogFlush))
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		p.add(envLogFormat, "%q is not json or text", c.LogFormat)
	}
	return p
}

func checkRange(p *problems, name string, d, lo, hi time.Duration) {
	if d < lo || d > hi {
		p.add(name, "%s is out of range %s..%s", fmtDur(d), fmtDur(lo), fmtDur(hi))
	}
}

// fmtDur renders a duration without redundant zero units: 720h, 2m, 1m30s.
func fmtDur(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// parsePort parses a decimal port in lo..65535.
func parsePort(s string, lo int) (int, bool) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" || len(s) > 5 {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= lo && n <= 65535
}

func (c Config) checkAddr(p *problems) {
	checkListenAddr(p, envAddr, c.Addr)
	if c.UsesSimulator() {
		checkListenAddr(p, envSimAddr, c.SimAddr)
	}
}

func checkListenAddr(p *problems, name, addr string) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		p.add(name, "%q is not host:port (e.g. 127.0.0.1:8080 or :8080)", addr)
		return
	}
	if _, ok := parsePort(port, 0); !ok {
		p.add(name, "port %q in %q is not a number in 0..65535", port, addr)
	}
}

func (c Config) checkRedis(p *problems) {
	if c.Cluster() {
		seen := make(map[string]int, len(c.RedisAddrs))
		for i, a := range c.RedisAddrs {
			host, port, err := net.SplitHostPort(a)
			switch {
			case err != nil || host == "":
				p.add(envRedisAddrs, "item %d (%q) is not host:port", i+1, a)
				continue
			case !validPort(port):
				p.add(envRedisAddrs, "item %d (%q): port is not a number in 1..65535", i+1, a)
				continue
			}
			key := strings.ToLower(a)
			if j, dup := seen[key]; dup {
				p.add(envRedisAddrs, "item %d (%q) repeats item %d", i+1, a, j+1)
				continue
			}
			seen[key] = i
		}
		return // REDIS_URL is ignored in cluster mode.
	}

	if c.RedisURL == "" {
		p.add(envRedisURL, "must be set when REDIS_ADDRS is empty")
		return
	}
	u, err := url.Parse(c.RedisURL)
	if err != nil {
		// url.Error repeats the whole URL, password included: show only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		p.add(envRedisURL, "not a valid URL: %v", err)
		return
	}
	shown := maskRedisURL(c.RedisURL)
	if s := strings.ToLower(u.Scheme); s != "redis" && s != "rediss" {
		p.add(envRedisURL, "%q: scheme must be redis or rediss", shown)
		return
	}
	if u.Opaque != "" || u.Hostname() == "" {
		p.add(envRedisURL, "%q has no host (e.g. redis://127.0.0.1:6379/0)", shown)
		return
	}
	if port := u.Port(); port != "" && !validPort(port) {
		p.add(envRedisURL, "%q: port is not a number in 1..65535", shown)
	}
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		if n, err := strconv.Atoi(db); err != nil || n < 0 {
			p.add(envRedisURL, "%q: path must be a database number such as /0", shown)
		}
	}
}

func validPort(s string) bool { _, ok := parsePort(s, 1); return ok }

// stripeKeyPrefix returns the known prefix of key, or "".
func stripeKeyPrefix(key string) string {
	for _, pre := range stripeKeyPrefixes {
		if strings.HasPrefix(key, pre) {
			return pre
		}
	}
	return ""
}

func isLiveKey(key string) bool { return strings.Contains(stripeKeyPrefix(key), "_live_") }

// tokenChars reports whether s is non-empty printable ASCII without spaces or
// commas: safe in an HTTP header and in a comma-separated variable.
func tokenChars(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if b := s[i]; b <= ' ' || b >= 0x7f || b == ',' {
			return false
		}
	}
	return true
}

func (c Config) checkStripe(p *problems) {
	// Never echo the key, not even a part of it: it is a secret even when malformed.
	if k := c.StripeSecretKey; k != "" {
		pre := stripeKeyPrefix(k)
		switch {
		case pre == "":
			p.add(envStripeSecretKey, "must start with sk_test_, sk_live_, rk_test_ or rk_live_ (value not shown)")
		case !tokenChars(k[len(pre):]):
			p.add(envStripeSecretKey, "must be %s followed by printable characters without spaces (value not shown)", pre)
		}
	}
	if b := c.StripeAPIBase; b != "" {
		u, err := url.Parse(b)
		switch {
		case err != nil || !u.IsAbs() || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "":
			p.add(envStripeAPIBase, "%q is not an absolute http or https URL (e.g. http://127.0.0.1:12111)", maskAPIBase(b))
		case u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
			p.add(envStripeAPIBase, "%q must not contain user info, a query or a fragment", maskAPIBase(b))
		case u.Scheme == "http" && isLiveKey(c.StripeSecretKey):
			p.add(envStripeAPIBase, "%q: a live Stripe key must only be sent over https", b)
		}
	}
}

func (c Config) checkWebhookSecrets(p *problems) {
	seen := make(map[string]int, len(c.WebhookSecrets))
	for i, s := range c.WebhookSecrets {
		if !strings.HasPrefix(s, webhookSecretPrefix) || !tokenChars(s[len(webhookSecretPrefix):]) {
			p.add(envWebhookSecrets, "item %d must be whsec_ followed by printable characters without spaces or commas (value not shown)", i+1)
			continue
		}
		if j, dup := seen[s]; dup {
			p.add(envWebhookSecrets, "item %d repeats item %d (value not shown)", i+1, j+1)
			continue
		}
		seen[s] = i
	}
}

func validKeyName(s string) bool {
	if s == "" || len(s) > maxAPIKeyNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '_' || b == '.' || b == '-') {
			return false
		}
	}
	return true
}

func (c Config) checkAPIKeys(p *problems) {
	if len(c.APIKeys) == 0 {
		p.add(envAPIKeys, "at least one key is required (name:scope:secret,...)")
		return
	}
	names := make(map[string]bool, len(c.APIKeys))
	secrets := make(map[string]string, len(c.APIKeys))
	for i, k := range c.APIKeys {
		// Refer to a key by its name when that is valid, else by position.
		ref := strconv.Quote(k.Name)
		if !validKeyName(k.Name) {
			ref = "#" + strconv.Itoa(i+1)
			p.add(envAPIKeys, "key %s: name %q must match [A-Za-z0-9_.-]{1,%d}", ref, k.Name, maxAPIKeyNameLen)
		} else if names[k.Name] {
			p.add(envAPIKeys, "key %s: name is used more than once", ref)
		}
		names[k.Name] = true
		if k.Scope != ScopeAdmin && k.Scope != ScopeCheckout {
			p.add(envAPIKeys, "key %s: scope %q is not admin or checkout", ref, k.Scope)
		}
		switch {
		case len(k.Secret) < minAPIKeySecretLen:
			p.add(envAPIKeys, "key %s: secret must be at least %d characters", ref, minAPIKeySecretLen)
		case !tokenChars(k.Secret):
			p.add(envAPIKeys, "key %s: secret must be printable characters without spaces or commas", ref)
		default:
			if other, dup := secrets[k.Secret]; dup {
				p.add(envAPIKeys, "key %s: secret is the same as key %s's", ref, other)
			} else {
				secrets[k.Secret] = ref
			}
		}
	}
}
