package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

// Secrets used across tests: distinctive so strings.Contains cannot match by accident.
const (
	adminSecret    = "adm1n-S3CRET-value-0001"
	checkoutSecret = "ch3ckout-S3CRET-value-0002"
	stripeKey      = "sk_test_51StripeS3CRETkeyMaterialXyZ9abcd"
	whsec1         = "whsec_W3bhookS3CRETone111"
	whsec2         = "whsec_W3bhookS3CRETtwo222"
	redisURLPass   = "r3disURLpassw0rdS3CRET"
	redisPass      = "r3disP4sswordS3CRET"
)

var validKeys = "admin:admin:" + adminSecret + ",checkout:checkout:" + checkoutSecret

// env returns a getenv over m; BILLING_API_KEYS defaults to validKeys unless
// present in m (use "" to unset it).
func env(m map[string]string) func(string) string {
	return func(name string) string {
		if v, ok := m[name]; ok {
			return v
		}
		if name == envAPIKeys {
			return validKeys
		}
		return ""
	}
}

func mustLoad(t *testing.T, m map[string]string) Config {
	t.Helper()
	c, err := Load(env(m))
	if err != nil {
		t.Fatalf("Load(%v): unexpected error:\n%v", m, err)
	}
	return c
}

func TestLoadDefaults(t *testing.T) {
	c := mustLoad(t, nil)
	tests := []struct {
		name      string
		got, want any
	}{
		{envAddr, c.Addr, "127.0.0.1:8080"},
		{envRedisURL, c.RedisURL, "redis://127.0.0.1:6379/0"},
		{envRedisAddrs, len(c.RedisAddrs), 0},
		{envRedisPassword, c.RedisPassword, ""},
		{envStripeSecretKey, c.StripeSecretKey, ""},
		{envStripeAPIBase, c.StripeAPIBase, ""},
		{envSimAddr, c.SimAddr, "127.0.0.1:12111"},
		{envStripeMaxRetries, c.StripeMaxRetries, 2},
		{envStripeTimeout, c.StripeTimeout, 20 * time.Second},
		{envWebhookSecrets, len(c.WebhookSecrets), 0},
		{envIdempotencyTTL, c.IdempotencyTTL, 24 * time.Hour},
		{envRequestTimeout, c.RequestTimeout, 45 * time.Second},
		{"RequestLease()", c.RequestLease(), 60 * time.Second},
		{envSweepLease, c.SweepLease, 2 * time.Minute},
		{envShutdownTimeout, c.ShutdownTimeout, 20 * time.Second},
		{envLogLevel, c.LogLevel, slog.LevelInfo},
		{envLogFormat, c.LogFormat, "json"},
		{envLogFlush, c.LogFlush, 100 * time.Millisecond},
		{"Cluster()", c.Cluster(), false},
		{"UsesSimulator()", c.UsesSimulator(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

// TestVarsDefaultsMatchLoad checks that the documented defaults are the real ones.
func TestVarsDefaultsMatchLoad(t *testing.T) {
	m := map[string]string{}
	for _, v := range Vars {
		if v.Default != "" {
			m[v.Name] = v.Default
		}
	}
	explicit := mustLoad(t, m)
	implicit := mustLoad(t, nil)
	if explicit.String() != implicit.String() {
		t.Errorf("Vars defaults differ from Load defaults:\n vars: %s\n load: %s", explicit, implicit)
	}
}

func TestLoadValid(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		check func(t *testing.T, c Config)
	}{
		{"addr all interfaces", map[string]string{envAddr: ":9090"}, func(t *testing.T, c Config) { eq(t, c.Addr, ":9090") }},
		{"addr ipv6 trimmed", map[string]string{envAddr: "  [::1]:0 "}, func(t *testing.T, c Config) { eq(t, c.Addr, "[::1]:0") }},
		{"addr max port", map[string]string{envAddr: "localhost:65535"}, func(t *testing.T, c Config) { eq(t, c.Addr, "localhost:65535") }},
		{"redis url tls with password", map[string]string{envRedisURL: "rediss://user:" + redisURLPass + "@cache.internal:6380/3"}, func(t *testing.T, c Config) {
			eq(t, c.RedisURL, "rediss://user:"+redisURLPass+"@cache.internal:6380/3")
			eq(t, c.Cluster(), false)
		}},
		{"redis url no port no db", map[string]string{envRedisURL: "redis://redis"}, func(t *testing.T, c Config) { eq(t, c.RedisURL, "redis://redis") }},
		{"redis url upper scheme", map[string]string{envRedisURL: "REDIS://h:1/"}, func(t *testing.T, c Config) { eq(t, c.RedisURL, "REDIS://h:1/") }},
		{"redis cluster trims and drops empty items", map[string]string{envRedisAddrs: " a:7000 , b:7001,,c:7002, ", envRedisURL: "not even a url ::"}, func(t *testing.T, c Config) {
			eq(t, strings.Join(c.RedisAddrs, "|"), "a:7000|b:7001|c:7002")
			eq(t, c.Cluster(), true)
		}},
		{"redis password", map[string]string{envRedisPassword: redisPass}, func(t *testing.T, c Config) { eq(t, c.RedisPassword, redisPass) }},
		{"stripe sk_test", map[string]string{envStripeSecretKey: stripeKey}, func(t *testing.T, c Config) {
			eq(t, c.StripeSecretKey, stripeKey)
			eq(t, c.UsesSimulator(), false)
		}},
		{"stripe rk_live with https base", map[string]string{envStripeSecretKey: "rk_live_abc", envStripeAPIBase: "https://api.stripe.com"}, func(t *testing.T, c Config) {
			eq(t, c.StripeSecretKey, "rk_live_abc")
		}},
		{"stripe sk_live and rk_test", map[string]string{envStripeSecretKey: "sk_live_x"}, func(t *testing.T, c Config) { eq(t, c.StripeSecretKey, "sk_live_x") }},
		{"stripe rk_test", map[string]string{envStripeSecretKey: "rk_test_x"}, func(t *testing.T, c Config) { eq(t, c.StripeSecretKey, "rk_test_x") }},
		{"stripe blank key means simulator", map[string]string{envStripeSecretKey: "   "}, func(t *testing.T, c Config) { eq(t, c.UsesSimulator(), true) }},
		{"stripe api base http stripe-mock, trailing slash trimmed", map[string]string{envStripeAPIBase: "http://127.0.0.1:12111/", envStripeSecretKey: "sk_test_123"}, func(t *testing.T, c Config) {
			eq(t, c.StripeAPIBase, "http://127.0.0.1:12111")
		}},
		{"stripe retries bounds", map[string]string{envStripeMaxRetries: "0"}, func(t *testing.T, c Config) { eq(t, c.StripeMaxRetries, 0) }},
		{"stripe retries max", map[string]string{envStripeMaxRetries: "10"}, func(t *testing.T, c Config) { eq(t, c.StripeMaxRetries, 10) }},
		{"stripe timeout min", map[string]string{envStripeTimeout: "1s"}, func(t *testing.T, c Config) { eq(t, c.StripeTimeout, time.Second) }},
		{"stripe timeout max", map[string]string{envStripeTimeout: "5m"}, func(t *testing.T, c Config) { eq(t, c.StripeTimeout, 5*time.Minute) }},
		{"webhook secrets rotation", map[string]string{envWebhookSecrets: whsec1 + " , " + whsec2 + ","}, func(t *testing.T, c Config) {
			eq(t, strings.Join(c.WebhookSecrets, "|"), whsec1+"|"+whsec2)
		}},
		{"api keys trimmed, trailing comma, colon in secret", map[string]string{envAPIKeys: " ops.team-1 : admin : " + adminSecret + ", pp_backend:checkout:a:b:c:d:e:f:g:h:i ,"}, func(t *testing.T, c Config) {
			want := []APIKey{{"ops.team-1", ScopeAdmin, adminSecret}, {"pp_backend", ScopeCheckout, "a:b:c:d:e:f:g:h:i"}}
			if !slices.Equal(c.APIKeys, want) {
				t.Errorf("APIKeys = %+v, want %+v", c.APIKeys, want)
			}
		}},
		{"api key name 64 chars", map[string]string{envAPIKeys: strings.Repeat("n", 64) + ":checkout:" + checkoutSecret}, func(t *testing.T, c Config) {
			eq(t, len(c.APIKeys), 1)
		}},
		{"idempotency ttl min", map[string]string{envIdempotencyTTL: "1m"}, func(t *testing.T, c Config) { eq(t, c.IdempotencyTTL, time.Minute) }},
		{"idempotency ttl max", map[string]string{envIdempotencyTTL: "720h"}, func(t *testing.T, c Config) { eq(t, c.IdempotencyTTL, 720*time.Hour) }},
		{"idempotency ttl compound", map[string]string{envIdempotencyTTL: "1h30m"}, func(t *testing.T, c Config) { eq(t, c.IdempotencyTTL, 90*time.Minute) }},
		{"reservation lease min", map[string]string{envSweepLease: "2s", envRequestTimeout: "1s"}, func(t *testing.T, c Config) { eq(t, c.SweepLease, 2*time.Second) }},
		{"request timeout short for tests", map[string]string{envRequestTimeout: "3s"}, func(t *testing.T, c Config) {
			eq(t, c.RequestTimeout, 3*time.Second)
			eq(t, c.RequestLease(), 4*time.Second)
		}},
		{"reservation lease max", map[string]string{envSweepLease: "1h"}, func(t *testing.T, c Config) { eq(t, c.SweepLease, time.Hour) }},
		{"shutdown timeout min", map[string]string{envShutdownTimeout: "1s"}, func(t *testing.T, c Config) { eq(t, c.ShutdownTimeout, time.Second) }},
		{"shutdown timeout max", map[string]string{envShutdownTimeout: "10m"}, func(t *testing.T, c Config) { eq(t, c.ShutdownTimeout, 10*time.Minute) }},
		{"log level debug upper", map[string]string{envLogLevel: "DEBUG"}, func(t *testing.T, c Config) { eq(t, c.LogLevel, slog.LevelDebug) }},
		{"log level warn", map[string]string{envLogLevel: "Warn"}, func(t *testing.T, c Config) { eq(t, c.LogLevel, slog.LevelWarn) }},
		{"log level error", map[string]string{envLogLevel: "error"}, func(t *testing.T, c Config) { eq(t, c.LogLevel, slog.LevelError) }},
		{"log level info", map[string]string{envLogLevel: "info"}, func(t *testing.T, c Config) { eq(t, c.LogLevel, slog.LevelInfo) }},
		{"log format text", map[string]string{envLogFormat: "TEXT"}, func(t *testing.T, c Config) { eq(t, c.LogFormat, "text") }},
		{"log format json", map[string]string{envLogFormat: "json"}, func(t *testing.T, c Config) { eq(t, c.LogFormat, "json") }},
		{"log flush each line", map[string]string{envLogFlush: "0"}, func(t *testing.T, c Config) { eq(t, c.LogFlush, time.Duration(0)) }},
		{"log flush max", map[string]string{envLogFlush: "10s"}, func(t *testing.T, c Config) { eq(t, c.LogFlush, 10*time.Second) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.check(t, mustLoad(t, tt.env)) })
	}
}

func eq[T comparable](t *testing.T, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestLoadInvalid(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string // the complete error message (exactly one problem)
	}{
		{"addr no port", map[string]string{envAddr: "localhost"}, `BILLING_ADDR: "localhost" is not host:port (e.g. 127.0.0.1:8080 or :8080)`},
		{"addr port range", map[string]string{envAddr: "127.0.0.1:65536"}, `BILLING_ADDR: port "65536" in "127.0.0.1:65536" is not a number in 0..65535`},
		{"addr port name", map[string]string{envAddr: ":http"}, `BILLING_ADDR: port "http" in ":http" is not a number in 0..65535`},
		{"addr negative port", map[string]string{envAddr: ":-1"}, `BILLING_ADDR: port "-1" in ":-1" is not a number in 0..65535`},
		{"redis url scheme", map[string]string{envRedisURL: "http://:" + redisURLPass + "@h:6379/0"}, `REDIS_URL: "http://:****@h:6379/0": scheme must be redis or rediss`},
		{"redis url no host", map[string]string{envRedisURL: "redis:///0"}, `REDIS_URL: "redis:///0" has no host (e.g. redis://127.0.0.1:6379/0)`},
		{"redis url opaque", map[string]string{envRedisURL: "redis:localhost"}, `REDIS_URL: "redis:localhost" has no host (e.g. redis://127.0.0.1:6379/0)`},
		{"redis url bad db", map[string]string{envRedisURL: "redis://u:" + redisURLPass + "@h:6379/zero"}, `REDIS_URL: "redis://u:****@h:6379/zero": path must be a database number such as /0`},
		{"redis url port 0", map[string]string{envRedisURL: "redis://h:0/0"}, `REDIS_URL: "redis://h:0/0": port is not a number in 1..65535`},
		{"redis url unparsable hides password", map[string]string{envRedisURL: "redis://:" + redisURLPass + "@h:port/0"}, `REDIS_URL: not a valid URL: invalid port ":port" after host`},
		{"redis addrs not host:port", map[string]string{envRedisAddrs: "a:7000,b"}, `REDIS_ADDRS: item 2 ("b") is not host:port`},
		{"redis addrs empty host", map[string]string{envRedisAddrs: ":7000"}, `REDIS_ADDRS: item 1 (":7000") is not host:port`},
		{"redis addrs port", map[string]string{envRedisAddrs: "a:0"}, `REDIS_ADDRS: item 1 ("a:0"): port is not a number in 1..65535`},
		{"redis addrs duplicate", map[string]string{envRedisAddrs: "a:7000,A:7000"}, `REDIS_ADDRS: item 2 ("A:7000") repeats item 1`},
		{"stripe key prefix", map[string]string{envStripeSecretKey: "pk_test_" + redisPass}, `STRIPE_SECRET_KEY: must start with sk_test_, sk_live_, rk_test_ or rk_live_ (value not shown)`},
		{"stripe key bare prefix", map[string]string{envStripeSecretKey: "sk_test_"}, `STRIPE_SECRET_KEY: must be sk_test_ followed by printable characters without spaces (value not shown)`},
		{"stripe key space", map[string]string{envStripeSecretKey: "sk_live_ab cd"}, `STRIPE_SECRET_KEY: must be sk_live_ followed by printable characters without spaces (value not shown)`},
		{"stripe api base relative", map[string]string{envStripeAPIBase: "127.0.0.1:12111"}, `STRIPE_API_BASE: "127.0.0.1:12111" is not an absolute http or https URL (e.g. http://127.0.0.1:12111)`},
		{"stripe api base scheme", map[string]string{envStripeAPIBase: "ftp://stripe"}, `STRIPE_API_BASE: "ftp://stripe" is not an absolute http or https URL (e.g. http://127.0.0.1:12111)`},
		{"stripe api base no host", map[string]string{envStripeAPIBase: "https:///v1"}, `STRIPE_API_BASE: "https:///v1" is not an absolute http or https URL (e.g. http://127.0.0.1:12111)`},
		{"stripe api base userinfo", map[string]string{envStripeAPIBase: "https://u:" + redisPass + "@api.stripe.com"}, `STRIPE_API_BASE: "https://****@api.stripe.com" must not contain user info, a query or a fragment`},
		{"stripe api base query", map[string]string{envStripeAPIBase: "https://api.stripe.com?x=1"}, `STRIPE_API_BASE: "https://api.stripe.com" must not contain user info, a query or a fragment`},
		{"live key over http", map[string]string{envStripeSecretKey: "sk_live_" + redisPass, envStripeAPIBase: "http://proxy.internal"}, `STRIPE_API_BASE: "http://proxy.internal": a live Stripe key must only be sent over https`},
		{"stripe retries not int", map[string]string{envStripeMaxRetries: "two"}, `STRIPE_MAX_NETWORK_RETRIES: "two" is not an integer`},
		{"stripe retries high", map[string]string{envStripeMaxRetries: "11"}, `STRIPE_MAX_NETWORK_RETRIES: 11 is out of range 0..10`},
		{"stripe retries negative", map[string]string{envStripeMaxRetries: "-1"}, `STRIPE_MAX_NETWORK_RETRIES: -1 is out of range 0..10`},
		{"stripe timeout syntax", map[string]string{envStripeTimeout: "20"}, `STRIPE_TIMEOUT: "20" is not a duration (use Go syntax such as 24h or 90m)`},
		{"stripe timeout low", map[string]string{envStripeTimeout: "999ms"}, `STRIPE_TIMEOUT: 999ms is out of range 1s..5m`},
		{"stripe timeout high", map[string]string{envStripeTimeout: "5m1s"}, `STRIPE_TIMEOUT: 5m1s is out of range 1s..5m`},
		{"webhook secret prefix", map[string]string{envWebhookSecrets: whsec1 + ",we_" + redisPass}, `STRIPE_WEBHOOK_SECRETS: item 2 must be whsec_ followed by printable characters without spaces or commas (value not shown)`},
		{"webhook secret bare prefix", map[string]string{envWebhookSecrets: "whsec_"}, `STRIPE_WEBHOOK_SECRETS: item 1 must be whsec_ followed by printable characters without spaces or commas (value not shown)`},
		{"webhook secret duplicate", map[string]string{envWebhookSecrets: whsec1 + "," + whsec2 + "," + whsec1}, `STRIPE_WEBHOOK_SECRETS: item 3 repeats item 1 (value not shown)`},
		{"api keys missing", map[string]string{envAPIKeys: ""}, `BILLING_API_KEYS: at least one key is required (name:scope:secret,...)`},
		{"api keys only commas", map[string]string{envAPIKeys: " , ,"}, `BILLING_API_KEYS: at least one key is required (name:scope:secret,...)`},
		{"api key bare secret", map[string]string{envAPIKeys: adminSecret}, `BILLING_API_KEYS: item 1 is not name:scope:secret (value not shown)`},
		{"api key two parts", map[string]string{envAPIKeys: "admin:admin:" + adminSecret + ",checkout:" + checkoutSecret}, `BILLING_API_KEYS: item 2 is not name:scope:secret (value not shown)`},
		{"api key name chars", map[string]string{envAPIKeys: "pay page:checkout:" + checkoutSecret}, `BILLING_API_KEYS: key #1: name "pay page" must match [A-Za-z0-9_.-]{1,64}`},
		{"api key name empty", map[string]string{envAPIKeys: ":checkout:" + checkoutSecret}, `BILLING_API_KEYS: key #1: name "" must match [A-Za-z0-9_.-]{1,64}`},
		{"api key name too long", map[string]string{envAPIKeys: strings.Repeat("n", 65) + ":checkout:" + checkoutSecret}, `BILLING_API_KEYS: key #1: name "` + strings.Repeat("n", 65) + `" must match [A-Za-z0-9_.-]{1,64}`},
		{"api key name duplicate", map[string]string{envAPIKeys: "pp:checkout:" + checkoutSecret + ",pp:admin:" + adminSecret}, `BILLING_API_KEYS: key "pp": name is used more than once`},
		{"api key scope", map[string]string{envAPIKeys: "ops:root:" + adminSecret}, `BILLING_API_KEYS: key "ops": scope "root" is not admin or checkout`},
		{"api key scope case", map[string]string{envAPIKeys: "ops:Admin:" + adminSecret}, `BILLING_API_KEYS: key "ops": scope "Admin" is not admin or checkout`},
		{"api key secret short", map[string]string{envAPIKeys: "ops:admin:fifteen-chars-x"}, `BILLING_API_KEYS: key "ops": secret must be at least 16 characters`},
		{"api key secret empty", map[string]string{envAPIKeys: "ops:admin:"}, `BILLING_API_KEYS: key "ops": secret must be at least 16 characters`},
		{"api key secret control char", map[string]string{envAPIKeys: "ops:admin:" + adminSecret + "\x01"}, `BILLING_API_KEYS: key "ops": secret must be printable characters without spaces or commas`},
		{"api key secret inner space", map[string]string{envAPIKeys: "ops:admin:" + adminSecret + " x"}, `BILLING_API_KEYS: key "ops": secret must be printable characters without spaces or commas`},
		{"api key secret duplicate", map[string]string{envAPIKeys: "a:admin:" + adminSecret + ",b:checkout:" + adminSecret}, `BILLING_API_KEYS: key "b": secret is the same as key "a"'s`},
		{"idempotency ttl syntax", map[string]string{envIdempotencyTTL: "3x"}, `IDEMPOTENCY_TTL: "3x" is not a duration (use Go syntax such as 24h or 90m)`},
		{"idempotency ttl days", map[string]string{envIdempotencyTTL: "1d"}, `IDEMPOTENCY_TTL: "1d" is not a duration (use Go syntax such as 24h or 90m)`},
		{"idempotency ttl low", map[string]string{envIdempotencyTTL: "59s"}, `IDEMPOTENCY_TTL: 59s is out of range 1m..720h`},
		{"idempotency ttl high", map[string]string{envIdempotencyTTL: "721h"}, `IDEMPOTENCY_TTL: 721h is out of range 1m..720h`},
		{"idempotency ttl negative", map[string]string{envIdempotencyTTL: "-24h"}, `IDEMPOTENCY_TTL: -24h is out of range 1m..720h`},
		{"reservation lease syntax", map[string]string{envSweepLease: "two minutes"}, `RESERVATION_LEASE: "two minutes" is not a duration (use Go syntax such as 24h or 90m)`},
		{"reservation lease low", map[string]string{envSweepLease: "900ms"}, `RESERVATION_LEASE: 900ms is out of range 1s..1h`},
		{"reservation lease high", map[string]string{envSweepLease: "61m"}, `RESERVATION_LEASE: 1h1m is out of range 1s..1h`},
		{"reservation lease within request lease", map[string]string{envSweepLease: "60s"},
			`RESERVATION_LEASE: 1m must exceed REQUEST_TIMEOUT (45s) by a third, or the sweeper could settle a reservation whose request still runs`},
		{"request timeout syntax", map[string]string{envRequestTimeout: "soon"}, `REQUEST_TIMEOUT: "soon" is not a duration (use Go syntax such as 24h or 90m)`},
		{"request timeout low", map[string]string{envRequestTimeout: "500ms"}, `REQUEST_TIMEOUT: 500ms is out of range 1s..5m`},
		{"request timeout high", map[string]string{envRequestTimeout: "6m", envSweepLease: "1h"}, `REQUEST_TIMEOUT: 6m is out of range 1s..5m`},
		{"shutdown timeout syntax", map[string]string{envShutdownTimeout: "20 s"}, `SHUTDOWN_TIMEOUT: "20 s" is not a duration (use Go syntax such as 24h or 90m)`},
		{"shutdown timeout zero", map[string]string{envShutdownTimeout: "0s"}, `SHUTDOWN_TIMEOUT: 0s is out of range 1s..10m`},
		{"shutdown timeout high", map[string]string{envShutdownTimeout: "11m"}, `SHUTDOWN_TIMEOUT: 11m is out of range 1s..10m`},
		{"log level", map[string]string{envLogLevel: "verbose"}, `LOG_LEVEL: "verbose" is not one of debug, info, warn, error`},
		{"log level numeric", map[string]string{envLogLevel: "INFO+2"}, `LOG_LEVEL: "INFO+2" is not one of debug, info, warn, error`},
		{"log format", map[string]string{envLogFormat: "xml"}, `LOG_FORMAT: "xml" is not json or text`},
		{"log flush syntax", map[string]string{envLogFlush: "fast"}, `LOG_FLUSH_INTERVAL: "fast" is not a duration (use Go syntax such as 24h or 90m)`},
		{"log flush high", map[string]string{envLogFlush: "11s"}, `LOG_FLUSH_INTERVAL: 11s is out of range 0..10s (0 writes each log line at once)`},
		{"log flush negative", map[string]string{envLogFlush: "-1s"}, `LOG_FLUSH_INTERVAL: -1s is out of range 0..10s (0 writes each log line at once)`},
	}
	secrets := []string{adminSecret, checkoutSecret, stripeKey, whsec1, whsec2, redisURLPass, redisPass}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(env(tt.env))
			if err == nil {
				t.Fatalf("Load succeeded, want error %q", tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error:\n got  %s\n want %s", got, tt.want)
			}
			for _, s := range secrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error message leaks secret %q: %v", s, err)
				}
			}
			if c.Addr != "" || c.APIKeys != nil {
				t.Errorf("Load returned a non-zero Config with an error: %+v", c)
			}
		})
	}
}

func TestLoadReportsAllProblemsTogether(t *testing.T) {
	_, err := Load(env(map[string]string{
		envLogFormat:        "xml", // listed out of order on purpose: output follows Vars
		envAddr:             "nope",
		envStripeMaxRetries: "many",
		envIdempotencyTTL:   "3x",
		envSweepLease:       "0s",
		envAPIKeys:          "a:admin:short,b:boss:" + adminSecret,
		envWebhookSecrets:   "sk_" + redisPass,
	}))
	if err == nil {
		t.Fatal("want error")
	}
	want := []string{
		`BILLING_ADDR: "nope" is not host:port (e.g. 127.0.0.1:8080 or :8080)`,
		`STRIPE_MAX_NETWORK_RETRIES: "many" is not an integer`,
		`STRIPE_WEBHOOK_SECRETS: item 1 must be whsec_ followed by printable characters without spaces or commas (value not shown)`,
		`BILLING_API_KEYS: key "a": secret must be at least 16 characters`,
		`BILLING_API_KEYS: key "b": scope "boss" is not admin or checkout`,
		`IDEMPOTENCY_TTL: "3x" is not a duration (use Go syntax such as 24h or 90m)`,
		`RESERVATION_LEASE: 0s is out of range 1s..1h`,
		`LOG_FORMAT: "xml" is not json or text`,
	}
	if got := strings.Split(err.Error(), "\n"); !slices.Equal(got, want) {
		t.Errorf("errors:\n got:\n  %s\n want:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	// Each problem is a separate error in the join.
	var multi interface{ Unwrap() []error }
	if !errors.As(err, &multi) || len(multi.Unwrap()) != len(want) {
		t.Errorf("want an errors.Join of %d errors, got %T", len(want), err)
	}
}

// A variable that fails to parse is reported once, not also by validation.
func TestLoadParseErrorNotRepeatedByValidation(t *testing.T) {
	_, err := Load(env(map[string]string{envAPIKeys: "oops"}))
	want := `BILLING_API_KEYS: item 1 is not name:scope:secret (value not shown)`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want only %q", err, want)
	}
}

func validConfig() Config {
	return Config{
		Addr:             "127.0.0.1:8080",
		RedisURL:         "redis://:" + redisURLPass + "@127.0.0.1:6379/0",
		RedisPassword:    redisPass,
		StripeSecretKey:  stripeKey,
		StripeAPIBase:    "http://127.0.0.1:12111",
		StripeMaxRetries: 2,
		StripeTimeout:    20 * time.Second,
		WebhookSecrets:   []string{whsec1, whsec2},
		APIKeys:          []APIKey{{"admin", ScopeAdmin, adminSecret}, {"checkout", ScopeCheckout, checkoutSecret}},
		IdempotencyTTL:   24 * time.Hour,
		RequestTimeout:   45 * time.Second,
		SweepLease:       2 * time.Minute,
		ShutdownTimeout:  20 * time.Second,
		CampaignLease:    15 * time.Second,
		MirrorRate:       RateLimit{20, time.Second},
		CampaignIndex:    1_000_000,
		ValidateCodeAge:  100 * time.Millisecond,
		RateLimitKey:     RateLimit{100, time.Second},
		RateLimitCust:    RateLimit{20, time.Minute},
		LogLevel:         slog.LevelInfo,
		LogFormat:        "json",
		LogFlush:         100 * time.Millisecond,
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(c *Config)
		want   []string // complete messages; nil = valid
	}{
		{"valid", func(c *Config) {}, nil},
		{"flag override addr", func(c *Config) { c.Addr = "0.0.0.0" }, []string{`BILLING_ADDR: "0.0.0.0" is not host:port (e.g. 127.0.0.1:8080 or :8080)`}},
		{"empty redis url without cluster", func(c *Config) { c.RedisURL = "" }, []string{`REDIS_URL: must be set when REDIS_ADDRS is empty`}},
		{"cluster ignores redis url", func(c *Config) { c.RedisURL = ""; c.RedisAddrs = []string{"r1:7000"} }, nil},
		{"odd log level", func(c *Config) { c.LogLevel = slog.LevelInfo + 2 }, []string{`LOG_LEVEL: INFO+2 is not one of debug, info, warn, error`}},
		{"uppercase log format", func(c *Config) { c.LogFormat = "JSON" }, []string{`LOG_FORMAT: "JSON" is not json or text`}},
		{"api key secret with comma", func(c *Config) { c.APIKeys[0].Secret = adminSecret + ",x" }, []string{`BILLING_API_KEYS: key "admin": secret must be printable characters without spaces or commas`}},
		{"zero config", func(c *Config) { *c = Config{} }, []string{
			`BILLING_ADDR: "" is not host:port (e.g. 127.0.0.1:8080 or :8080)`,
			`REDIS_URL: must be set when REDIS_ADDRS is empty`,
			`STRIPE_SIM_ADDR: "" is not host:port (e.g. 127.0.0.1:8080 or :8080)`,
			`STRIPE_TIMEOUT: 0s is out of range 1s..5m`,
			`BILLING_API_KEYS: at least one key is required (name:scope:secret,...)`,
			`IDEMPOTENCY_TTL: 0s is out of range 1m..720h`,
			`REQUEST_TIMEOUT: 0s is out of range 1s..5m`,
			`RESERVATION_LEASE: 0s is out of range 1s..1h`,
			`SHUTDOWN_TIMEOUT: 0s is out of range 1s..10m`,
			`CAMPAIGN_GENERATION_LEASE: 0s is out of range 1s..5m`,
			`LOG_FORMAT: "" is not json or text`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			c.APIKeys = slices.Clone(c.APIKeys)
			tt.modify(&c)
			err := c.Validate()
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Validate:\n got:\n  %s\n want:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

// allSecrets returns every secret value in c, including the Redis URL password.
func allSecrets(c Config) []string {
	s := []string{c.StripeSecretKey, c.RedisPassword, redisURLPass}
	s = append(s, c.WebhookSecrets...)
	for _, k := range c.APIKeys {
		s = append(s, k.Secret)
	}
	return s
}

// renderings returns String() and the LogValue as written by both slog handlers.
func renderings(t *testing.T, c Config) map[string]string {
	t.Helper()
	var js, txt bytes.Buffer
	slog.New(slog.NewJSONHandler(&js, nil)).Info("config", "config", c)
	slog.New(slog.NewTextHandler(&txt, nil)).Info("config", "config", c)
	return map[string]string{
		"String":       c.String(),
		"fmt %v":       fmt.Sprintf("%v", c),
		"fmt %+v":      fmt.Sprintf("%+v", c),
		"fmt %#v":      fmt.Sprintf("%#v", c),
		"fmt keys %v":  fmt.Sprintf("%v %+v", c.APIKeys, c.APIKeys),
		"json handler": js.String(),
		"text handler": txt.String(),
	}
}

func TestRenderingNeverContainsSecrets(t *testing.T) {
	tests := []struct {
		name   string
		modify func(c *Config)
	}{
		{"single redis, test key", func(c *Config) {}},
		{"redis url with user and password", func(c *Config) { c.RedisURL = "rediss://default:" + redisURLPass + "@h:6380/2" }},
		{"cluster", func(c *Config) { c.RedisAddrs = []string{"a:7000", "b:7001"} }},
		{"restricted live key", func(c *Config) { c.StripeSecretKey = "rk_live_" + redisPass + "Q" }},
		{"short key", func(c *Config) { c.StripeSecretKey = "sk_test_S3CRETxy" }},
		{"malformed key", func(c *Config) { c.StripeSecretKey = "pk_S3CRETmalformed" }},
		{"unparsable redis url", func(c *Config) { c.RedisURL = "redis://:" + redisURLPass + "@h:port/0" }},
		{"api base with userinfo and query", func(c *Config) {
			c.StripeAPIBase = "https://u:" + redisURLPass + "@x?token=" + redisURLPass
		}},
		{"one webhook secret", func(c *Config) { c.WebhookSecrets = c.WebhookSecrets[:1] }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.modify(&c)
			for where, out := range renderings(t, c) {
				for _, s := range allSecrets(c) {
					if s != "" && strings.Contains(out, s) {
						t.Errorf("%s contains secret %q:\n%s", where, s, out)
					}
				}
			}
		})
	}
}

func TestString(t *testing.T) {
	c := validConfig()
	want := `addr=127.0.0.1:8080 redis=single redis_url=redis://:****@127.0.0.1:6379/0 redis_password=**** ` +
		`stripe=test stripe_key=sk_test_…abcd stripe_api_base=http://127.0.0.1:12111 stripe_max_retries=2 stripe_timeout=20s ` +
		`webhook_secrets=whsec_…(masked)x2 api_keys=[admin:admin:****,checkout:checkout:****] ` +
		`idempotency_ttl=24h request_timeout=45s reservation_lease=2m shutdown_timeout=20s campaign_generation_lease=15s campaign_mirror_rate=20/s campaign_code_index=1000000 validate_code_max_age=100ms rate_limit_per_api_key=100/s rate_limit_per_customer=20/m log_level=info log_format=json log_flush_interval=100ms`
	eq(t, c.String(), want)

	sim := mustLoad(t, map[string]string{envRedisAddrs: "a:7000,b:7001", envWebhookSecrets: whsec1})
	want = `addr=127.0.0.1:8080 redis=cluster redis_addrs=[a:7000,b:7001] redis_password=none ` +
		`stripe=simulator stripe_sim_addr=127.0.0.1:12111 stripe_api_base=default stripe_max_retries=2 stripe_timeout=20s ` +
		`webhook_secrets=whsec_…(masked) api_keys=[admin:admin:****,checkout:checkout:****] ` +
		`idempotency_ttl=24h request_timeout=45s reservation_lease=2m shutdown_timeout=20s campaign_generation_lease=15s campaign_mirror_rate=20/s campaign_code_index=1000000 validate_code_max_age=100ms rate_limit_per_api_key=100/s rate_limit_per_customer=20/m log_level=info log_format=json log_flush_interval=100ms`
	eq(t, sim.String(), want)
}

func TestMaskStripeKey(t *testing.T) {
	tests := []struct{ key, want string }{
		{"", "none"},
		{stripeKey, "sk_test_…abcd"},
		{"sk_live_0123456789abcdefWXYZ", "sk_live_…WXYZ"},
		{"rk_test_0123456789abcdef", "rk_test_…cdef"},
		{"rk_live_0123456789abcde", "rk_live_…"}, // too short to show a tail
		{"sk_test_123", "sk_test_…"},
		{"whatever_secret", "****"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) { eq(t, maskStripeKey(tt.key), tt.want) })
	}
}

func TestLogValue(t *testing.T) {
	c := validConfig()
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("starting", "config", c)
	var line struct {
		Config map[string]any `json:"config"`
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("decode %s: %v", buf.String(), err)
	}
	// Same keys and values as String().
	for _, kv := range strings.Split(c.String(), " ") {
		k, v, _ := strings.Cut(kv, "=")
		got, ok := line.Config[k]
		if !ok {
			t.Errorf("LogValue lacks %q", k)
			continue
		}
		var s string
		switch g := got.(type) {
		case []any:
			parts := make([]string, len(g))
			for i, p := range g {
				parts[i], _ = p.(string)
			}
			s = "[" + strings.Join(parts, ",") + "]"
		case float64:
			s = fmt.Sprint(g)
		default:
			s, _ = g.(string)
		}
		if s != v {
			t.Errorf("LogValue %s = %q, String has %q", k, s, v)
		}
	}
	if len(line.Config) != len(strings.Split(c.String(), " ")) {
		t.Errorf("LogValue has %d attrs, String %d", len(line.Config), len(strings.Split(c.String(), " ")))
	}
}

func TestClusterAndSimulator(t *testing.T) {
	tests := []struct {
		name               string
		c                  Config
		cluster, simulator bool
	}{
		{"zero", Config{}, false, true},
		{"cluster", Config{RedisAddrs: []string{"a:1"}}, true, true},
		{"stripe key", Config{StripeSecretKey: "sk_test_1"}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eq(t, tt.c.Cluster(), tt.cluster)
			eq(t, tt.c.UsesSimulator(), tt.simulator)
		})
	}
}

func TestVarsCoverEverythingLoadReads(t *testing.T) {
	read := map[string]bool{}
	getenv := env(nil)
	if _, err := Load(func(name string) string { read[name] = true; return getenv(name) }); err != nil {
		t.Fatal(err)
	}
	// Cluster mode must not read anything else.
	if _, err := Load(func(name string) string {
		read[name] = true
		if name == envRedisAddrs {
			return "a:1"
		}
		return getenv(name)
	}); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, v := range Vars {
		if documented[v.Name] {
			t.Errorf("Vars lists %s twice", v.Name)
		}
		documented[v.Name] = true
		if strings.TrimSpace(v.Help) == "" {
			t.Errorf("Vars %s has no Help", v.Name)
		}
	}
	got := slices.Sorted(maps.Keys(read))
	want := slices.Sorted(maps.Keys(documented))
	if !slices.Equal(got, want) {
		t.Errorf("Load reads %v\nVars documents %v", got, want)
	}
}

func TestLoadToolNeedsNoAPIKeys(t *testing.T) {
	c, err := LoadTool(env(map[string]string{envAPIKeys: ""}))
	if err != nil || len(c.APIKeys) != 0 {
		t.Fatalf("LoadTool without keys: %v", err)
	}
	if _, err := Load(env(map[string]string{envAPIKeys: ""})); err == nil {
		t.Fatal("serve must require BILLING_API_KEYS")
	}
	if _, err := LoadTool(env(map[string]string{envAPIKeys: "x:admin:short"})); err == nil {
		t.Fatal("keys that are set are still checked")
	}
}

func TestSimAddrOnlyCheckedForTheSimulator(t *testing.T) {
	if _, err := Load(env(map[string]string{envSimAddr: "nope"})); err == nil || !strings.Contains(err.Error(), "STRIPE_SIM_ADDR") {
		t.Fatalf("bad STRIPE_SIM_ADDR with the simulator: %v", err)
	}
	if _, err := Load(env(map[string]string{envSimAddr: "nope", envStripeSecretKey: stripeKey})); err != nil {
		t.Fatalf("STRIPE_SIM_ADDR is unused with a Stripe key: %v", err)
	}
}

func TestRateLimits(t *testing.T) {
	c := mustLoad(t, map[string]string{envRateLimitKey: "50/S", envRateLimitCust: "off"})
	if c.RateLimitKey != (RateLimit{50, time.Second}) || !c.RateLimitCust.Off() || c.RateLimitCust.String() != "off" {
		t.Fatalf("limits %v %v", c.RateLimitKey, c.RateLimitCust)
	}
	if c := mustLoad(t, map[string]string{envRateLimitCust: "5/h"}); c.RateLimitCust != (RateLimit{5, time.Hour}) {
		t.Fatalf("5/h read as %v", c.RateLimitCust)
	}
	for v, want := range map[string]string{
		"fast":      `RATE_LIMIT_PER_CUSTOMER: "fast" is not N/s, N/m, N/h or off`,
		"10/day":    `RATE_LIMIT_PER_CUSTOMER: "10/day" is not N/s, N/m, N/h or off`,
		"0/m":       `RATE_LIMIT_PER_CUSTOMER: 0 requests is out of range 1..1000000 (off disables the limit)`,
		"2000000/s": `RATE_LIMIT_PER_CUSTOMER: 2000000 requests is out of range 1..1000000`,
	} {
		env := map[string]string{envRateLimitCust: v, envAPIKeys: "admin:admin:" + adminSecret}
		_, err := Load(func(k string) string { return env[k] })
		if err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %s", v, err, want)
		}
	}
}

func TestCampaignCodeIndex(t *testing.T) {
	if c := mustLoad(t, nil); c.CampaignIndex != 1_000_000 {
		t.Fatalf("default %d", c.CampaignIndex)
	}
	for v, want := range map[string]int{"off": 0, "OFF": 0, "0": 0, "250000": 250_000, "100000000": 100_000_000} {
		if c := mustLoad(t, map[string]string{envCampaignIndex: v}); c.CampaignIndex != want {
			t.Errorf("%s read as %d, want %d", v, c.CampaignIndex, want)
		}
	}
	if c := mustLoad(t, map[string]string{envCampaignIndex: "off"}); !strings.Contains(c.String(), "campaign_code_index=off") {
		t.Errorf("off renders as %s", c.String())
	}
	for v, want := range map[string]string{
		"lots":      `CAMPAIGN_CODE_INDEX: "lots" is not a number of codes or off`,
		"1e6":       `CAMPAIGN_CODE_INDEX: "1e6" is not a number of codes or off`,
		"-1":        `CAMPAIGN_CODE_INDEX: -1 codes is out of range 0..100000000 (0 or off disables the index)`,
		"100000001": `CAMPAIGN_CODE_INDEX: 100000001 codes is out of range 0..100000000 (0 or off disables the index)`,
	} {
		env := map[string]string{envCampaignIndex: v, envAPIKeys: "admin:admin:" + adminSecret}
		_, err := Load(func(k string) string { return env[k] })
		if err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %s", v, err, want)
		}
	}
}
