// Package stripecli finds (installing it on first use) the real Stripe CLI
// that the project pins: npm package @stripe/cli at the exact version in
// tools/stripe-cli/package-lock.json, installed by scripts/ensure-stripe-cli.sh
// (what `make stripe-cli`, `make test` and `make run` use). Tests run the real
// binary against the simulator with --api-base; nothing reaches Stripe.
package stripecli

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	once    sync.Once
	binPath string
	binErr  error
)

// moduleRoot walks up from the working directory to the folder of go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Path returns the Stripe CLI binary, running scripts/ensure-stripe-cli.sh
// once per process (it installs from the lockfile only when needed).
// STRIPE_CLI_BIN overrides it.
func Path() (string, error) {
	once.Do(func() {
		if p := os.Getenv("STRIPE_CLI_BIN"); p != "" {
			binPath = p
			return
		}
		root, err := moduleRoot()
		if err != nil {
			binErr = err
			return
		}
		cmd := exec.Command(filepath.Join(root, "scripts", "ensure-stripe-cli.sh"))
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			binErr = fmt.Errorf("scripts/ensure-stripe-cli.sh: %v\n%s", err, errb.String())
			return
		}
		binPath = strings.TrimSpace(out.String())
	})
	return binPath, binErr
}

// Bin is Path for tests: it fails the test when the CLI cannot be had.
func Bin(t testing.TB) string {
	t.Helper()
	p, err := Path()
	if err != nil {
		t.Fatalf("the Stripe CLI is needed (make stripe-cli): %v", err)
	}
	return p
}

// Env is the environment for the CLI in tests: a private HOME and config
// folder (the CLI writes its config and device name there), no proxy, and
// the rest of the process environment.
func Env(t testing.TB) []string {
	t.Helper()
	home := t.TempDir()
	env := []string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "STRIPE_CLI_TELEMETRY_OPTOUT=1"}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "HOME", "XDG_CONFIG_HOME", "HTTPS_PROXY", "HTTP_PROXY", "STRIPE_API_KEY", "STRIPE_DEVICE_NAME":
			continue
		}
		env = append(env, kv)
	}
	return env
}
