package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/stripesim"
	"github.com/billing-adapter/billing-adapter/internal/testutil/redistest"
	"github.com/billing-adapter/billing-adapter/internal/testutil/stripespec"
	"github.com/redis/go-redis/v9"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
)

// Test API keys; the log assertions check that none of them is ever logged.
const (
	adminSecret    = "adm_secret_0123456789abcdef"
	admin2Secret   = "adm2_secret_0123456789abcdef"
	checkoutSecret = "chk_secret_0123456789abcdef"
	stripeKey      = "sk_test_e2e_0123456789abcdefghij"
	webhookSecret  = "whsec_e2e_test_secret"
)

var redisSrv *redistest.Server

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(runChild())
	}
	s, stop, err := redistest.StartMain()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	redisSrv = s
	code := m.Run()
	stop()
	os.Exit(code)
}

// stack is what the service instances of one test share: the Stripe
// simulator and the package's redis-server (flushed per stack).
type stack struct {
	Sim      *stripesim.Server
	SimURL   string
	Stripe   *client.API
	Redis    *redis.Client
	RedisURL string
}

// service is one billing-adapter started through run() on a free port,
// against the Stripe simulator and a real redis-server.
type service struct {
	*stack
	URL    string
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// newStack starts a simulator (options may set its webhook endpoint and
// clock) and flushes the package's Redis, or the one at redisURL when set.
func newStack(t *testing.T, redisURL string, opts stripesim.Options) *stack {
	t.Helper()
	opts.RewordErrors = true // no test may pass by reading Stripe's wording
	sim := stripesim.New(opts)
	simSrv := httptest.NewServer(stripespec.Handler(t, sim)) // every answer held to Stripe's OpenAPI spec
	t.Cleanup(func() { simSrv.Close(); stripespec.Events(t, sim.EventBodies()); sim.Close() })
	if redisURL == "" {
		redisURL = redisSrv.URL()
	}
	opt, _ := redis.ParseURL(redisURL)
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	// Runs once the test's services have stopped (cleanups run last in, first out).
	t.Cleanup(func() { checkCustomerMarkers(t, rdb) })
	backend := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		URL: stripe.String(simSrv.URL), MaxNetworkRetries: stripe.Int64(0),
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull},
	})
	return &stack{Sim: sim, SimURL: simSrv.URL, Redis: rdb, RedisURL: redisURL,
		Stripe: client.New(stripeKey, &stripe.Backends{API: backend, Connect: backend, Uploads: backend})}
}

// startService starts one service on its own stack. env overrides the
// defaults of serviceEnv.
func startService(t *testing.T, env map[string]string) *service {
	t.Helper()
	return newStack(t, env["REDIS_URL"], stripesim.Options{}).start(t, env)
}

// serviceEnv is the environment of a service on st listening on addr.
func (st *stack) serviceEnv(addr string, env map[string]string) map[string]string {
	vars := map[string]string{
		"BILLING_ADDR":               addr,
		"REDIS_URL":                  st.RedisURL,
		"STRIPE_SECRET_KEY":          stripeKey,
		"STRIPE_API_BASE":            st.SimURL,
		"STRIPE_MAX_NETWORK_RETRIES": "0",
		"STRIPE_WEBHOOK_SECRETS":     webhookSecret,
		"BILLING_API_KEYS": "admin:admin:" + adminSecret + ",admin2:admin:" + admin2Secret +
			",checkout:checkout:" + checkoutSecret,
		"LOG_LEVEL":        "debug",
		"SHUTDOWN_TIMEOUT": "10s",
		// Tests send hundreds of redemption requests with one key and few
		// customers; the brute-force guard has its own tests (guard_e2e_test.go).
		"RATE_LIMIT_PER_API_KEY":  "off",
		"RATE_LIMIT_PER_CUSTOMER": "off",
	}
	for k, v := range env {
		vars[k] = v
	}
	return vars
}

// start runs one more service instance on the stack, through run().
func (st *stack) start(t *testing.T, env map[string]string) *service {
	t.Helper()
	addr := freeAddr(t)
	vars := st.serviceEnv(addr, env)
	ctx, cancel := context.WithCancel(context.Background())
	s := &service{stack: st, URL: "http://" + addr, logs: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() {
		s.done <- run(ctx, []string{"serve"}, func(k string) string { return vars[k] }, s.logs, s.logs)
	}()
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("service stopped with error: %v", err)
		}
		for _, secret := range []string{adminSecret, admin2Secret, checkoutSecret, stripeKey, webhookSecret} {
			if strings.Contains(s.logs.String(), secret) {
				t.Errorf("a secret appeared in the logs")
			}
		}
		if t.Failed() {
			t.Logf("service logs:\n%s", s.logs.String())
		}
	})
	waitHealthy(t, s.URL, func() error {
		select {
		case err := <-s.done:
			return fmt.Errorf("service exited early: %v\n%s", err, s.logs.String())
		default:
			return nil
		}
	})
	return s
}

// waitHealthy polls /healthz until it answers; exited reports a process
// that ended meanwhile.
func waitHealthy(t *testing.T, url string, exited func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := exited(); err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("service did not start: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var stopOnce sync.Map

// stop cancels run's context and waits for it to return (once).
func (s *service) stop() error {
	if _, loaded := stopOnce.LoadOrStore(s, true); loaded {
		return nil
	}
	s.cancel()
	select {
	case err := <-s.done:
		return err
	case <-time.After(30 * time.Second):
		return fmt.Errorf("run did not return after cancel")
	}
}

// response is one HTTP answer, decoded.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response is not JSON (%d): %s", r.Status, r.Body)
	}
	return m
}

// errorCode returns error.code and error.param of an error response.
func (r response) errorCode(t *testing.T) (string, string) {
	t.Helper()
	e, _ := r.json(t)["error"].(map[string]any)
	if e == nil {
		t.Fatalf("no error object in %d %s", r.Status, r.Body)
	}
	code, _ := e["code"].(string)
	param, _ := e["param"].(string)
	return code, param
}

// call sends one request. body may be a string (sent as is) or a value
// (JSON-encoded); idemKey "" sends no Idempotency-Key.
func (s *service) call(t *testing.T, method, path, secret, idemKey string, body any) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	assertOpenAPI(t, req, resp.StatusCode, resp.Header, raw)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: raw}
}

func mustStatus(t *testing.T, r response, want int) {
	t.Helper()
	if r.Status != want {
		t.Fatalf("status %d, want %d: %s", r.Status, want, r.Body)
	}
}

var keySeq struct {
	sync.Mutex
	n int
}

// newKey returns a fresh Idempotency-Key.
func newKey() string {
	keySeq.Lock()
	defer keySeq.Unlock()
	keySeq.n++
	return fmt.Sprintf("idem-%d-%d", time.Now().UnixNano(), keySeq.n)
}

// checkCustomerMarkers fails the test if Redis, once it says every ledger
// line's customer has its marker (ba:{catalog}:layout = 2), holds a line
// whose customer lacks it: validate would read that customer as having no
// redemption of the code. It runs after every test that uses newStack, so
// every flow the end-to-end tests drive (apply, subscribe, webhooks about
// discounts made outside the adapter, reconcile -fix) is checked.
func checkCustomerMarkers(t *testing.T, rdb *redis.Client) {
	ctx := context.Background()
	if rdb.Get(ctx, "ba:{catalog}:layout").Val() != "2" {
		return // not migrated (or Redis gone): validate does not use the markers
	}
	iter := rdb.Scan(ctx, 0, "ba:{*}:rd", 1000).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		codeID := strings.TrimSuffix(strings.TrimPrefix(key, "ba:{"), "}:rd")
		lines, err := rdb.HGetAll(ctx, key).Result()
		if err != nil {
			return
		}
		for id, raw := range lines {
			var line struct {
				Customer string `json:"cus"`
			}
			if json.Unmarshal([]byte(raw), &line) != nil || line.Customer == "" {
				continue
			}
			if !rdb.SIsMember(ctx, "ba:{"+line.Customer+"}:codes", codeID).Val() {
				t.Errorf("ledger line %s of %s: customer %s has no marker ba:{%s}:codes", id, codeID, line.Customer, line.Customer)
			}
		}
	}
}
