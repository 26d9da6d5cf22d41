package config

import (
	"strconv"
	"time"
)

// Var documents one environment variable.
type Var struct {
	Name    string // environment variable name
	Default string // default value; empty when the variable has none
	Help    string // one-line meaning, including accepted forms and ranges
}

// Environment variable names.
const (
	envAddr             = "BILLING_ADDR"
	envRedisURL         = "REDIS_URL"
	envRedisAddrs       = "REDIS_ADDRS"
	envRedisPassword    = "REDIS_PASSWORD"
	envStripeSecretKey  = "STRIPE_SECRET_KEY"
	envStripeAPIBase    = "STRIPE_API_BASE"
	envSimAddr          = "STRIPE_SIM_ADDR"
	envSimState         = "STRIPE_SIM_STATE"
	envStripeMaxRetries = "STRIPE_MAX_NETWORK_RETRIES"
	envStripeTimeout    = "STRIPE_TIMEOUT"
	envWebhookSecrets   = "STRIPE_WEBHOOK_SECRETS"
	envAPIKeys          = "BILLING_API_KEYS"
	envIdempotencyTTL   = "IDEMPOTENCY_TTL"
	envRequestTimeout   = "REQUEST_TIMEOUT"
	envSweepLease       = "RESERVATION_LEASE"
	envShutdownTimeout  = "SHUTDOWN_TIMEOUT"
	envCampaignLease    = "CAMPAIGN_GENERATION_LEASE"
	envRateLimitKey     = "RATE_LIMIT_PER_API_KEY"
	envRateLimitCust    = "RATE_LIMIT_PER_CUSTOMER"
	envMirrorRate       = "CAMPAIGN_MIRROR_RATE"
	envCampaignIndex    = "CAMPAIGN_CODE_INDEX"
	envValidateCodeAge  = "VALIDATE_CODE_MAX_AGE"
	envLogLevel         = "LOG_LEVEL"
	envLogFormat        = "LOG_FORMAT"
	envLogFlush         = "LOG_FLUSH_INTERVAL"
	envMetricsCodeStock = "METRICS_CODE_STOCK"
)

// Defaults and limits.
const (
	defaultAddr             = "127.0.0.1:8080"
	defaultRedisURL         = "redis://127.0.0.1:6379/0"
	defaultSimAddr          = "127.0.0.1:12111"
	defaultStripeMaxRetries = 2
	defaultStripeTimeout    = 20 * time.Second
	defaultIdempotencyTTL   = 24 * time.Hour
	defaultRequestTimeout   = 45 * time.Second
	defaultSweepLease       = 2 * time.Minute
	defaultShutdownTimeout  = 20 * time.Second
	defaultCampaignLease    = 15 * time.Second
	defaultRateLimitKey     = "100/s"
	defaultRateLimitCust    = "20/m"
	defaultMirrorRate       = "20/s"
	defaultCampaignIndex    = 1_000_000
	maxCampaignIndex        = 100_000_000
	defaultValidateCodeAge  = 100 * time.Millisecond
	maxValidateCodeAge      = 10 * time.Second
	maxRateLimitCount       = 1_000_000
	defaultLogFormat        = "json"
	defaultLogFlush         = 100 * time.Millisecond
	maxLogFlush             = 10 * time.Second

	minStripeMaxRetries, maxStripeMaxRetries = 0, 10
	minStripeTimeout, maxStripeTimeout       = time.Second, 5 * time.Minute
	minIdempotencyTTL, maxIdempotencyTTL     = time.Minute, 720 * time.Hour
	minRequestTimeout, maxRequestTimeout     = time.Second, 5 * time.Minute
	minSweepLease, maxSweepLease             = time.Second, time.Hour
	minShutdownTimeout, maxShutdownTimeout   = time.Second, 10 * time.Minute
	minCampaignLease, maxCampaignLease       = time.Second, 5 * time.Minute

	minAPIKeySecretLen = 16
	maxAPIKeyNameLen   = 64
)

// Vars documents every variable Load reads, in the order of the help output
// and the README table. Errors from Load are reported in this order too.
var Vars = []Var{
	{envAddr, defaultAddr, "HTTP listen address, host:port (port 0-65535; empty host listens on all interfaces)."},
	{envRedisURL, defaultRedisURL, "Single-node Redis: redis:// or rediss:// (TLS) URL with host, optional user:password and /db. Ignored when REDIS_ADDRS is set."},
	{envRedisAddrs, "", "Comma-separated host:port seed nodes; non-empty selects Redis Cluster (REDIS_URL is then ignored)."},
	{envRedisPassword, "", "Redis password for the cluster; for a single node it overrides the password in REDIS_URL. Never logged."},
	{envStripeSecretKey, "", "Stripe secret or restricted key (sk_test_, sk_live_, rk_test_, rk_live_). Unset: run against the embedded Stripe simulator. Never logged."},
	{envStripeAPIBase, "", "Stripe API base URL, absolute http(s) (stripe-mock, the simulator, or Stripe). Unset: Stripe's default. A live key requires https."},
	{envSimAddr, defaultSimAddr, "Where the embedded Stripe simulator listens when STRIPE_SECRET_KEY is unset, host:port (port 0 picks a free one)."},
	{envSimState, "", "File the embedded Stripe simulator loads its whole state from and saves it to after every change (make run: .local/stripe-sim.json), so a restart continues where it stopped. Unset: in memory only."},
	{envStripeMaxRetries, strconv.Itoa(defaultStripeMaxRetries), "Network retries per Stripe request, 0..10."},
	{envStripeTimeout, fmtDur(defaultStripeTimeout), "Timeout per Stripe request, Go duration 1s..5m."},
	{envWebhookSecrets, "", "Comma-separated Stripe webhook signing secrets (whsec_...); list old and new during rotation. Never logged."},
	{envAPIKeys, "", "Required. Comma-separated name:scope:secret inbound API keys; name [A-Za-z0-9_.-]{1,64}, scope admin|checkout, secret >= 16 printable characters without spaces or commas; names and secrets unique."},
	{envIdempotencyTTL, fmtDur(defaultIdempotencyTTL), "How long Idempotency-Key records are kept, Go duration 1m..720h."},
	{envRequestTimeout, fmtDur(defaultRequestTimeout), "Budget of one /v1 request, Stripe calls included, Go duration 1s..5m. A crashed request's Idempotency-Key and subscription lock free themselves after 4/3 of it."},
	{envSweepLease, fmtDur(defaultSweepLease), "How long an unconfirmed stock reservation is held before the sweeper checks Stripe, Go duration 1s..1h; must exceed 4/3 of REQUEST_TIMEOUT."},
	{envShutdownTimeout, fmtDur(defaultShutdownTimeout), "Graceful shutdown budget for in-flight requests, Go duration 1s..10m."},
	{envCampaignLease, fmtDur(defaultCampaignLease), "How long a replica owns a campaign's code generation after its last batch of 1,000 codes; a crashed replica's campaign is resumed by another one after it. Go duration 1s..5m."},
	{envMirrorRate, defaultMirrorRate, "Stripe promotion codes made for campaign codes on demand, over all replicas, N/s, N/m or N/h (keep it under Stripe's limit: 25 requests/s in test mode, 100/s live, shared with every other call); off = unthrottled."},
	{envCampaignIndex, strconv.Itoa(defaultCampaignIndex), "Campaign code texts each replica holds in memory to resolve a campaign code without reading its text key (one Redis round trip per validate instead of two), 0..100000000; whole campaigns, least recently used evicted first; about 1.2 MB per 100,000 codes of 12 characters. 0 or off disables."},
	{envValidateCodeAge, fmtDur(defaultValidateCodeAge), "How old each replica's snapshot of a promo code (or of a campaign's code record) may be when validate decides on it, Go duration 0..10s: validate of a code then reads only the customer's slot in Redis (no hot slot), and another replica's change of the code's status, stock or expiry shows in validate after at most this long (the replica's own changes and the customer's own redemptions at once; apply and subscribe always read Redis). 0 = read the code from Redis on every validate."},
	{envRateLimitKey, defaultRateLimitKey, "Brute-force guard: validate, subscribe with a code and apply per API key, N/s, N/m or N/h (a burst of N, refilled evenly), N 1..1000000; off disables. Over it: 429 rate_limited with Retry-After."},
	{envRateLimitCust, defaultRateLimitCust, "Brute-force guard per customer (apply without customer: per subscription), same form as RATE_LIMIT_PER_API_KEY."},
	{envLogLevel, "info", "Log level: debug, info, warn or error (case-insensitive)."},
	{envLogFormat, defaultLogFormat, "Log format: json or text."},
	{envLogFlush, fmtDur(defaultLogFlush), "serve: how long log lines may wait to be written together, Go duration 0..10s (one write for many lines under load). A WARN or ERROR line, 64 KiB of lines and shutdown write at once; a process killed without shutting down loses at most this long of lines. 0 = write each line at once."},
	{envMetricsCodeStock, "false", "true: export stock, reserved and uses per active code on /metrics (label code, at most 1000 codes); off by default to keep label cardinality bounded."},
}
