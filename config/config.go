// Package config loads, validates and renders the billing-adapter configuration.
//
// All settings come from environment variables (see [Vars] for the full list
// with defaults); the `serve` command may override fields with flags and then
// calls [Config.Validate] again. [Load] reports every problem at once, each
// message starting with the variable it concerns, so a misconfigured start
// fails with one complete list instead of one error per attempt.
//
// Decisions worth knowing:
//   - Every value is trimmed of surrounding white space; an empty value means
//     "unset" and selects the default. List variables are comma-separated,
//     items are trimmed and empty items (e.g. from a trailing comma) ignored.
//   - Error messages never echo a secret (Stripe key, webhook secrets, API key
//     secrets, Redis passwords); Redis URLs are echoed with the password masked.
//   - When REDIS_ADDRS is set (Redis Cluster) REDIS_URL is ignored and therefore
//     not validated.
//   - A live Stripe key (sk_live_/rk_live_) is refused together with a plain
//     http STRIPE_API_BASE, so a live key never travels unencrypted.
//   - STRIPE_WEBHOOK_SECRETS may be empty; the webhook receiver then has no
//     secret to verify against and must reject every delivery.
//
// The package depends on the standard library only.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Scope is the permission level of an inbound API key.
type Scope string

// The scopes an API key can carry.
const (
	// ScopeAdmin may manage promo codes (create, update, archive, reconcile).
	ScopeAdmin Scope = "admin"
	// ScopeCheckout may validate and apply promo codes for the payment page.
	ScopeCheckout Scope = "checkout"
)

// APIKey is one inbound bearer key from BILLING_API_KEYS.
type APIKey struct {
	Name   string // identifies the caller in logs and scopes idempotency keys
	Scope  Scope
	Secret string // the bearer token; never logged
}

// Config is the complete, validated service configuration.
type Config struct {
	Addr             string        // BILLING_ADDR: listen address, host:port
	RedisURL         string        // REDIS_URL: single-node Redis (redis:// or rediss://); ignored in cluster mode
	RedisAddrs       []string      // REDIS_ADDRS: Redis Cluster seed nodes; non-empty selects cluster mode
	RedisPassword    string        // REDIS_PASSWORD: cluster password, or overrides the password in REDIS_URL
	StripeSecretKey  string        // STRIPE_SECRET_KEY: empty selects the embedded Stripe simulator
	StripeAPIBase    string        // STRIPE_API_BASE: optional API base URL (no trailing slash)
	SimAddr          string        // STRIPE_SIM_ADDR: listen address of the embedded simulator
	SimState         string        // STRIPE_SIM_STATE: file the embedded simulator keeps its state in ("" = memory)
	StripeMaxRetries int           // STRIPE_MAX_NETWORK_RETRIES
	StripeTimeout    time.Duration // STRIPE_TIMEOUT: per-request timeout for Stripe calls
	WebhookSecrets   []string      // STRIPE_WEBHOOK_SECRETS: whsec_ secrets, several during rotation
	APIKeys          []APIKey      // BILLING_API_KEYS
	IdempotencyTTL   time.Duration // IDEMPOTENCY_TTL: how long idempotency records live
	RequestTimeout   time.Duration // REQUEST_TIMEOUT: budget of one /v1 request, Stripe calls included
	MetricsCodeStock bool          // METRICS_CODE_STOCK: per-code stock gauges on /metrics (opt-in)
	SweepLease       time.Duration // RESERVATION_LEASE: how long an unconfirmed stock reservation is held before the sweeper checks Stripe
	ShutdownTimeout  time.Duration // SHUTDOWN_TIMEOUT: graceful shutdown budget
	CampaignLease    time.Duration // CAMPAIGN_GENERATION_LEASE: a replica's hold on a campaign's code generation
	MirrorRate       RateLimit     // CAMPAIGN_MIRROR_RATE: Stripe promotion codes made for campaign codes
	CampaignIndex    int           // CAMPAIGN_CODE_INDEX: campaign code texts held in memory per replica (0 = off)
	ValidateCodeAge  time.Duration // VALIDATE_CODE_MAX_AGE: how old validate's per-replica snapshot of a code may be (0 = always read Redis)
	RateLimitKey     RateLimit     // RATE_LIMIT_PER_API_KEY: redemption requests per API key
	RateLimitCust    RateLimit     // RATE_LIMIT_PER_CUSTOMER: redemption requests per customer
	LogLevel         slog.Level    // LOG_LEVEL
	LogFormat        string        // LOG_FORMAT: "json" or "text"
	LogFlush         time.Duration // LOG_FLUSH_INTERVAL: how long serve's log lines may wait to be written together (0 = each at once)
}

// RequestLease is how long a running request holds its Idempotency-Key and
// its subscription lock: longer than RequestTimeout, so only a crashed
// request's lease runs out, and short enough that a retry after a crash
// proceeds soon.
func (c Config) RequestLease() time.Duration { return c.RequestTimeout + c.RequestTimeout/3 }

// Cluster reports whether RedisAddrs selects Redis Cluster.
func (c Config) Cluster() bool { return len(c.RedisAddrs) > 0 }

// UsesSimulator reports whether no STRIPE_SECRET_KEY is set, so the service
// runs against the embedded Stripe simulator.
func (c Config) UsesSimulator() bool { return c.StripeSecretKey == "" }

// varError is one configuration problem, attributed to an environment variable.
type varError struct {
	Var string
	Msg string
}

func (e *varError) Error() string { return e.Var + ": " + e.Msg }

// problems collects varErrors.
type problems []*varError

func (p *problems) add(name, format string, args ...any) {
	*p = append(*p, &varError{Var: name, Msg: fmt.Sprintf(format, args...)})
}

// join sorts the problems into the order of Vars (stable within a variable)
// and joins them; nil when there are none.
func (p problems) join() error {
	if len(p) == 0 {
		return nil
	}
	order := make(map[string]int, len(Vars))
	for i, v := range Vars {
		order[v.Name] = i
	}
	slices.SortStableFunc(p, func(a, b *varError) int { return order[a.Var] - order[b.Var] })
	errs := make([]error, len(p))
	for i, e := range p {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// Load reads every variable via getenv, applies defaults, and validates.
// It returns all problems at once, joined with errors.Join, each naming the
// variable. On error the returned Config is the zero value.
func Load(getenv func(string) string) (Config, error) { return load(getenv, true) }

// LoadTool is Load for the commands that serve no API (reconcile, webhooks
// send): BILLING_API_KEYS may be unset (keys that are set are still checked).
func LoadTool(getenv func(string) string) (Config, error) { return load(getenv, false) }

func load(getenv func(string) string, serving bool) (Config, error) {
	var parse problems
	get := func(name string) string { return strings.TrimSpace(getenv(name)) }

	c := Config{
		Addr:             defaultAddr,
		RedisURL:         defaultRedisURL,
		SimAddr:          defaultSimAddr,
		StripeMaxRetries: defaultStripeMaxRetries,
		StripeTimeout:    defaultStripeTimeout,
		IdempotencyTTL:   defaultIdempotencyTTL,
		RequestTimeout:   defaultRequestTimeout,
		SweepLease:       defaultSweepLease,
		ShutdownTimeout:  defaultShutdownTimeout,
		CampaignLease:    defaultCampaignLease,
		MirrorRate:       mustRate(defaultMirrorRate),
		CampaignIndex:    defaultCampaignIndex,
		ValidateCodeAge:  defaultValidateCodeAge,
		RateLimitKey:     mustRate(defaultRateLimitKey),
		RateLimitCust:    mustRate(defaultRateLimitCust),
		LogLevel:         slog.LevelInfo,
		LogFormat:        defaultLogFormat,
		LogFlush:         defaultLogFlush,
	}

	if v := get(envAddr); v != "" {
		c.Addr = v
	}
	if v := get(envRedisURL); v != "" {
		c.RedisURL = v
	}
	c.RedisAddrs = splitList(get(envRedisAddrs))
	c.RedisPassword = get(envRedisPassword)
	c.StripeSecretKey = get(envStripeSecretKey)
	c.StripeAPIBase = strings.TrimRight(get(envStripeAPIBase), "/")
	if v := get(envSimAddr); v != "" {
		c.SimAddr = v
	}
	c.SimState = get(envSimState)
	if v := get(envStripeMaxRetries); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			parse.add(envStripeMaxRetries, "%q is not an integer", v)
		} else {
			c.StripeMaxRetries = n
		}
	}
	loadDuration(get, &parse, envStripeTimeout, &c.StripeTimeout)
	c.WebhookSecrets = splitList(get(envWebhookSecrets))
	for i, item := range splitList(get(envAPIKeys)) {
		name, rest, ok1 := strings.Cut(item, ":")
		scope, secret, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 {
			// The item may be a bare secret: never echo it.
			parse.add(envAPIKeys, "item %d is not name:scope:secret (value not shown)", i+1)
			continue
		}
		c.APIKeys = append(c.APIKeys, APIKey{
			Name:   strings.TrimSpace(name),
			Scope:  Scope(strings.TrimSpace(scope)),
			Secret: strings.TrimSpace(secret),
		})
	}
	loadDuration(get, &parse, envIdempotencyTTL, &c.IdempotencyTTL)
	loadDuration(get, &parse, envRequestTimeout, &c.RequestTimeout)
	loadDuration(get, &parse, envSweepLease, &c.SweepLease)
	loadDuration(get, &parse, envShutdownTimeout, &c.ShutdownTimeout)
	loadDuration(get, &parse, envCampaignLease, &c.CampaignLease)
	loadRate(get, &parse, envMirrorRate, &c.MirrorRate)
	if v := get(envCampaignIndex); strings.EqualFold(v, "off") {
		c.CampaignIndex = 0
	} else if v != "" {
		if n, err := strconv.Atoi(v); err != nil {
			parse.add(envCampaignIndex, "%q is not a number of codes or off", v)
		} else {
			c.CampaignIndex = n
		}
	}
	loadDuration(get, &parse, envValidateCodeAge, &c.ValidateCodeAge)
	loadDuration(get, &parse, envLogFlush, &c.LogFlush)
	loadRate(get, &parse, envRateLimitKey, &c.RateLimitKey)
	loadRate(get, &parse, envRateLimitCust, &c.RateLimitCust)
	if v := get(envLogLevel); v != "" {
		if lvl, ok := logLevels[strings.ToLower(v)]; ok {
			c.LogLevel = lvl
		} else {
			parse.add(envLogLevel, "%q is not one of debug, info, warn, error", v)
		}
	}
	if v := get(envLogFormat); v != "" {
		c.LogFormat = strings.ToLower(v)
	}
	if v := get(envMetricsCodeStock); v != "" {
		if b, err := strconv.ParseBool(v); err != nil {
			parse.add(envMetricsCodeStock, "%q is not true or false", v)
		} else {
			c.MetricsCodeStock = b
		}
	}

	// A variable that failed to parse keeps its default (or a partial value),
	// so validation of it would only add noise: report the parse error alone.
	failed := make(map[string]bool, len(parse))
	for _, p := range parse {
		failed[p.Var] = true
	}
	all := parse
	for _, p := range c.problems() {
		if failed[p.Var] || (!serving && p.Var == envAPIKeys && len(c.APIKeys) == 0) {
			continue
		}
		all = append(all, p)
	}
	if err := all.join(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// loadDuration parses the variable name into *dst when it is set.
func loadDuration(get func(string) string, parse *problems, name string, dst *time.Duration) {
	v := get(name)
	if v == "" {
		return
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		parse.add(name, "%q is not a duration (use Go syntax such as 24h or 90m)", v)
		return
	}
	*dst = d
}

// splitList splits a comma-separated list, trims items and drops empty ones.
// It returns nil for an empty list.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}
