package config

import (
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

const (
	masked = "****"
	// minKeyTailShown is how long the part after a Stripe key's prefix must be
	// before its last 4 characters are shown; short keys (stripe-mock's
	// "sk_test_123") show the prefix only.
	minKeyTailShown = 16
)

// String renders the config for the one startup log line, every secret
// masked: the Stripe key shows only its prefix and last 4 characters
// ("sk_test_…abcd"), webhook secrets only their count, API keys
// "name:scope:****", passwords "****".
func (c Config) String() string {
	var b strings.Builder
	for i, a := range c.attrs() {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(a.Key)
		b.WriteByte('=')
		b.WriteString(quoteIfNeeded(attrText(a.Value)))
	}
	return b.String()
}

// GoString keeps %#v from printing secrets: it renders like String.
func (c Config) GoString() string { return "config.Config{" + c.String() + "}" }

// String renders an API key as "name:scope:****", so printing a key (or a
// slice of them) never shows its secret.
func (k APIKey) String() string { return k.Name + ":" + string(k.Scope) + ":" + masked }

// LogValue implements slog.LogValuer: a group with the same masked values as
// String.
func (c Config) LogValue() slog.Value { return slog.GroupValue(c.attrs()...) }

// attrs is the single source of what is shown for a Config.
func (c Config) attrs() []slog.Attr {
	a := []slog.Attr{slog.String("addr", c.Addr)}
	if c.Cluster() {
		a = append(a,
			slog.String("redis", "cluster"),
			slog.Any("redis_addrs", slices.Clone(c.RedisAddrs)),
		)
	} else {
		a = append(a,
			slog.String("redis", "single"),
			slog.String("redis_url", maskRedisURL(c.RedisURL)),
		)
	}
	a = append(a, slog.String("redis_password", maskIfSet(c.RedisPassword)))

	if c.UsesSimulator() {
		a = append(a, slog.String("stripe", "simulator"), slog.String("stripe_sim_addr", c.SimAddr))
		if c.SimState != "" {
			a = append(a, slog.String("stripe_sim_state", c.SimState))
		}
	} else {
		mode := "test"
		if isLiveKey(c.StripeSecretKey) {
			mode = "live"
		}
		a = append(a, slog.String("stripe", mode), slog.String("stripe_key", maskStripeKey(c.StripeSecretKey)))
	}
	base := "default"
	if c.StripeAPIBase != "" {
		base = maskAPIBase(c.StripeAPIBase)
	}
	keys := make([]string, len(c.APIKeys))
	for i, k := range c.APIKeys {
		keys[i] = k.String()
	}
	return append(a,
		slog.String("stripe_api_base", base),
		slog.Int("stripe_max_retries", c.StripeMaxRetries),
		slog.String("stripe_timeout", fmtDur(c.StripeTimeout)),
		slog.String("webhook_secrets", maskWebhookSecrets(c.WebhookSecrets)),
		slog.Any("api_keys", keys),
		slog.String("idempotency_ttl", fmtDur(c.IdempotencyTTL)),
		slog.String("request_timeout", fmtDur(c.RequestTimeout)),
		slog.String("reservation_lease", fmtDur(c.SweepLease)),
		slog.String("shutdown_timeout", fmtDur(c.ShutdownTimeout)),
		slog.String("campaign_generation_lease", fmtDur(c.CampaignLease)),
		slog.String("campaign_mirror_rate", c.MirrorRate.String()),
		slog.String("campaign_code_index", campaignIndexText(c.CampaignIndex)),
		slog.String("validate_code_max_age", fmtDur(c.ValidateCodeAge)),
		slog.String("rate_limit_per_api_key", c.RateLimitKey.String()),
		slog.String("rate_limit_per_customer", c.RateLimitCust.String()),
		slog.String("log_level", strings.ToLower(c.LogLevel.String())),
		slog.String("log_format", c.LogFormat),
		slog.String("log_flush_interval", fmtDur(c.LogFlush)),
	)
}

// attrText renders an attribute value for String: string slices as [a,b].
func attrText(v slog.Value) string {
	if v.Kind() == slog.KindAny {
		if ss, ok := v.Any().([]string); ok {
			return "[" + strings.Join(ss, ",") + "]"
		}
	}
	return v.String()
}

func quoteIfNeeded(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\r\n\"=") {
		return strconv.Quote(s)
	}
	return s
}

func maskIfSet(s string) string {
	if s == "" {
		return "none"
	}
	return masked
}

// maskStripeKey shows the known prefix and, for long keys, the last 4
// characters: "sk_test_…abcd". Unknown prefixes show nothing.
func maskStripeKey(k string) string {
	if k == "" {
		return "none"
	}
	pre := stripeKeyPrefix(k)
	if pre == "" {
		return masked
	}
	tail := k[len(pre):]
	if len(tail) < minKeyTailShown {
		return pre + "…"
	}
	return pre + "…" + tail[len(tail)-4:]
}

// maskWebhookSecrets shows only how many secrets are configured.
func maskWebhookSecrets(s []string) string {
	switch len(s) {
	case 0:
		return "none"
	case 1:
		return webhookSecretPrefix + "…(masked)"
	default:
		return webhookSecretPrefix + "…(masked)x" + strconv.Itoa(len(s))
	}
}

// maskRedisURL replaces the password of a Redis URL with "****". A URL that
// does not parse is not shown at all (it might contain a password).
func maskRedisURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	if u.User == nil {
		return u.String()
	}
	if _, ok := u.User.Password(); !ok {
		return u.String()
	}
	return spliceUserinfo(u, url.User(u.User.Username()).String()+":"+masked)
}

// maskAPIBase replaces user info with "****" and drops query and fragment
// (Validate rejects all three; this keeps String safe for an unvalidated
// Config).
func maskAPIBase(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if strings.Contains(raw, "@") {
			return "(unparsable)"
		}
		return raw
	}
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
	if u.User == nil {
		return u.String()
	}
	return spliceUserinfo(u, masked)
}

// spliceUserinfo renders u with the literal userinfo (url.URL would
// percent-encode the asterisks of the mask).
func spliceUserinfo(u *url.URL, userinfo string) string {
	u.User = nil
	s := u.String()
	prefix := u.Scheme + "://"
	if !strings.HasPrefix(s, prefix) {
		return "(unparsable)"
	}
	return prefix + userinfo + "@" + s[len(prefix):]
}

// campaignIndexText renders CAMPAIGN_CODE_INDEX as configured: a number of
// codes, or off.
func campaignIndexText(n int) string {
	if n == 0 {
		return "off"
	}
	return strconv.Itoa(n)
}
