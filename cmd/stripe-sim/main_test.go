package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
)

func TestRunServesAndShutsDown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	env := map[string]string{"STRIPE_WEBHOOK_SECRET": "whsec_x"}
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-seed"}, func(k string) string { return env[k] }, pw, io.Discard)
		pw.Close()
	}()

	sc := bufio.NewScanner(pr)
	var url, customer, price string
	seedRE := regexp.MustCompile(`customer=(\S+) product=(\S+) price=(\S+)`)
	deadline := time.After(10 * time.Second)
	lines := make(chan string)
	go func() {
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	for url == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("run exited early: %v", <-done)
			}
			if m := seedRE.FindStringSubmatch(l); m != nil {
				customer, price = m[1], m[3]
			}
			if strings.HasPrefix(l, "stripe-sim listening on http://") {
				url = strings.TrimPrefix(l, "stripe-sim listening on ")
			}
		case <-deadline:
			t.Fatal("no listening line")
		}
	}
	go func() {
		for range lines {
		}
	}()
	if customer == "" || price == "" {
		t.Fatal("seed IDs not printed")
	}

	backend := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		URL: stripe.String(url), MaxNetworkRetries: stripe.Int64(0),
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull},
	})
	api := client.New("sk_test_cmd", &stripe.Backends{API: backend, Connect: backend, Uploads: backend})
	c, err := api.Customers.Get(customer, nil)
	if err != nil || c.ID != customer {
		t.Fatalf("seeded customer: %v %+v", err, c)
	}
	sub, err := api.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String(customer),
		Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(price)}}})
	if err != nil || sub.Status != "active" {
		t.Fatalf("subscription: %v %+v", err, sub)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not shut down")
	}
}

func TestRunFlagErrors(t *testing.T) {
	getenv := func(string) string { return "" }
	if err := run(context.Background(), []string{"-nope"}, getenv, io.Discard, io.Discard); err == nil {
		t.Fatal("unknown flag accepted")
	}
	if err := run(context.Background(), []string{"-webhook-url", "http://x"}, getenv, io.Discard, io.Discard); err == nil {
		t.Fatal("webhook URL without secret accepted")
	}
	if err := run(context.Background(), []string{"-addr", "256.0.0.1:bad"}, getenv, io.Discard, io.Discard); err == nil {
		t.Fatal("bad address accepted")
	}
}

func TestRunRewordErrors(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-reword-errors"}, func(string) string { return "" }, pw, io.Discard)
		pw.Close()
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run returned %v", err)
		}
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "stripe-sim listening on http://") {
		t.Fatalf("first line %q, want the listening line", sc.Text())
	}
	go io.Copy(io.Discard, pr)
	url := strings.TrimPrefix(sc.Text(), "stripe-sim listening on ")
	backend := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		URL: stripe.String(url), MaxNetworkRetries: stripe.Int64(0),
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull},
	})
	api := client.New("sk_test_cmd", &stripe.Backends{API: backend, Connect: backend, Uploads: backend})
	_, err := api.Customers.Get("cus_missing", nil)
	var se *stripe.Error
	if !errors.As(err, &se) || se.Code != stripe.ErrorCodeResourceMissing || se.Param != "id" ||
		!strings.HasPrefix(se.Msg, "Reworded by stripe-sim") {
		t.Fatalf("missing customer: %v, want resource_missing on id with a reworded message", err)
	}
}

// -h/--help prints the usage on stdout and succeeds; it documents every flag
// and every /_sim/ control with its body.
func TestHelpDocumentsTheControls(t *testing.T) {
	for _, arg := range []string{"-h", "--help"} {
		var stdout, stderr strings.Builder
		if err := run(context.Background(), []string{arg}, func(string) string { return "" }, &stdout, &stderr); err != nil {
			t.Fatalf("run %s: %v", arg, err)
		}
		if stderr.Len() != 0 {
			t.Errorf("run %s wrote to stderr: %q", arg, stderr.String())
		}
		for _, want := range []string{"-webhook-url", "-cli-webhook-secret", "-state", "POST   /_sim/seed", "POST   /_sim/webhooks/endpoint", `{"url":`,
			"POST   /_sim/webhooks/chaos", `{"copies":3,"shuffle":true}`, "POST   /_sim/customers/{id}/decline",
			`{"decline":true}`, "POST   /_sim/faults", `"kind":"server_error"`, "commit_then_hang", "DELETE /_sim/faults",
			"GET    /_sim/counts", "POST   /_sim/counts/reset", "GET    /_sim/cli"} {
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("%s does not mention %s", arg, want)
			}
		}
	}
}
