package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/billing-adapter/billing-adapter/config"
	"github.com/billing-adapter/billing-adapter/webhooks"
)

// sendWebhook signs a Stripe event with the first configured webhook secret,
// as Stripe would, and posts it to the service: offline testing of the
// receiver without Stripe or the stripe CLI.
func sendWebhook(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("webhooks send", flag.ContinueOnError)
	url := fs.String("url", "", "receiver URL (default http://BILLING_ADDR/webhooks/stripe)")
	if err := parseFlags(fs, args, "usage: billing-adapter webhooks send [-url URL] FILE.json (- reads stdin)", stdout, stderr); err != nil {
		if errors.Is(err, errHelpShown) {
			return nil
		}
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"usage: billing-adapter webhooks send [-url URL] FILE.json (- reads stdin)"}
	}
	cfg, err := config.LoadTool(getenv)
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	if len(cfg.WebhookSecrets) == 0 {
		return usageError{"set STRIPE_WEBHOOK_SECRETS: the event is signed with its first secret"}
	}
	var body []byte
	if name := fs.Arg(0); name == "-" {
		body, err = io.ReadAll(io.LimitReader(os.Stdin, webhooks.MaxBody+1))
	} else {
		body, err = os.ReadFile(name)
	}
	if err != nil {
		return err
	}
	var ev struct{ ID, Type string }
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID == "" || ev.Type == "" {
		return fmt.Errorf("%s is not a Stripe event (JSON with id and type)", fs.Arg(0))
	}
	target := *url
	if target == "" {
		target = "http://" + webhookHost(cfg.Addr) + "/webhooks/stripe"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", webhooks.Sign(body, cfg.WebhookSecrets[0], time.Now()))
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	fmt.Fprintf(stdout, "%s %s -> %s\n%s", ev.ID, ev.Type, resp.Status, answer)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("the receiver answered %s", resp.Status)
	}
	return nil
}
