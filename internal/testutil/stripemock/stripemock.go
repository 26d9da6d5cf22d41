// Package stripemock runs github.com/stripe/stripe-mock (the version pinned as
// a Go tool in go.mod) for contract tests. stripe-mock validates every request
// against Stripe's OpenAPI spec and answers with fixtures; it keeps no state.
package stripemock

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestKey is a secret key stripe-mock accepts.
const TestKey = "sk_test_123"

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Start builds stripe-mock (once per test binary) and starts it on two free
// loopback ports, waits until it answers, registers t.Cleanup to stop it and
// returns its HTTP base URL ("http://127.0.0.1:PORT").
//
// The binary is built with `go build` from the module root into a directory
// under os.TempDir() named after the module path, then renamed into place, so
// concurrent test binaries of one checkout share a single file instead of
// leaving one copy per run behind. It fails the test (never skips) when the go
// tool is missing.
func Start(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() { binPath, buildErr = build() })
	if buildErr != nil {
		t.Fatalf("stripemock: %v", buildErr)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		url, stop, err := launch(binPath)
		if err == nil {
			t.Cleanup(stop)
			return url
		}
		lastErr = err // most likely a port taken between probe and bind: try new ports
	}
	t.Fatalf("stripemock: %v", lastErr)
	return ""
}

func build() (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("the go tool is needed to build stripe-mock but is not on PATH (%v)", err)
	}
	out, err := exec.Command(goBin, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module (go env GOMOD = %q)", gomod)
	}
	sum := sha256.Sum256([]byte(gomod))
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("stripemock-%d-%s", os.Getuid(), hex.EncodeToString(sum[:6])))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, ".build-*")
	if err != nil {
		return "", err
	}
	tmp.Close()
	cmd := exec.Command(goBin, "build", "-o", tmp.Name(), "github.com/stripe/stripe-mock")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("go build github.com/stripe/stripe-mock: %v\n%s", err, out)
	}
	final := filepath.Join(dir, "stripe-mock")
	if err := os.Rename(tmp.Name(), final); err != nil {
		os.Remove(tmp.Name())
		return "", err
	}
	return final, nil
}

// syncBuffer collects the child's output for failure messages.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func launch(bin string) (string, func(), error) {
	httpPort, err := freePort()
	if err != nil {
		return "", nil, err
	}
	httpsPort, err := freePort()
	if err != nil {
		return "", nil, err
	}
	httpAddr := "127.0.0.1:" + strconv.Itoa(httpPort)
	var output syncBuffer
	cmd := exec.Command(bin, "-http-addr", httpAddr, "-https-addr", "127.0.0.1:"+strconv.Itoa(httpsPort))
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop := func() {
		cmd.Process.Kill()
		<-exited
	}

	base := "http://" + httpAddr
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return "", nil, fmt.Errorf("stripe-mock exited before answering:\n%s", output.String())
		default:
		}
		req, _ := http.NewRequest(http.MethodGet, base+"/v1/coupons", nil)
		req.Header.Set("Authorization", "Bearer "+TestKey)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			// Only stripe-mock sets this header: anything else on the port
			// means another process took it and ours will exit.
			if resp.Header.Get("Stripe-Mock-Version") != "" {
				return base, stop, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	return "", nil, fmt.Errorf("stripe-mock did not answer on %s within 30s:\n%s", base, output.String())
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
