package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// -h/--help on every command and subcommand prints its usage on stdout and
// succeeds; help TOPIC prints that topic; version prints the build's version;
// a wrong flag is a usage error (exit 2) on stderr.
func TestHelpAndVersion(t *testing.T) {
	getenv := func(string) string { return "" }
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-h"}, "commands:"},
		{[]string{"--help"}, "commands:"},
		{[]string{"help"}, "commands:"},
		{[]string{"serve", "-h"}, "usage: billing-adapter serve"},
		{[]string{"serve", "--help"}, "-redis-url"},
		{[]string{"reconcile", "-h"}, "usage: billing-adapter reconcile"},
		{[]string{"reconcile", "--help"}, "-since"},
		{[]string{"webhooks", "-h"}, "usage: billing-adapter webhooks send"},
		{[]string{"webhooks", "send", "--help"}, "-url"},
		{[]string{"help", "serve"}, "usage: billing-adapter serve"},
		{[]string{"help", "reconcile"}, "-fix"},
		{[]string{"help", "webhooks"}, "webhooks send"},
		{[]string{"help", "config"}, "STRIPE_WEBHOOK_SECRETS"},
		{[]string{"help", "version"}, "version"},
		{[]string{"version"}, "billing-adapter "},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), tc.args, getenv, &stdout, &stderr)
		if err != nil || !strings.Contains(stdout.String(), tc.want) || stderr.Len() != 0 {
			t.Errorf("%v: err %v, stdout %q (want %q), stderr %q", tc.args, err, stdout.String(), tc.want, stderr.String())
		}
	}
	for _, args := range [][]string{{"serve", "-bogus"}, {"reconcile", "-nope"}, {"help", "nosuch"}, {"webhooks", "send", "-x"}} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), args, getenv, &stdout, &stderr)
		if err == nil || exitCode(err) != 2 || !strings.Contains(stderr.String(), "usage") {
			t.Errorf("%v: err %v (exit %d), stderr %q: want a usage error", args, err, exitCode(err), stderr.String())
		}
	}
}
