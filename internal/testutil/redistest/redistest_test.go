package redistest

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ping sends a raw PING and returns the first reply line.
func ping(t *testing.T, addr string) (string, error) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimRight(line, "\r\n"), err
}

func mustPong(t *testing.T, addr string) {
	t.Helper()
	got, err := ping(t, addr)
	if err != nil {
		t.Fatalf("PING %s: %v", addr, err)
	}
	if got != "+PONG" {
		t.Fatalf("PING %s = %q, want +PONG", addr, got)
	}
}

func mustBeDown(t *testing.T, addr string) {
	t.Helper()
	if got, err := ping(t, addr); err == nil {
		t.Fatalf("PING %s answered %q after the server went down", addr, got)
	}
}

func TestStartAnswersPing(t *testing.T) {
	s := Start(t)
	host, port, err := net.SplitHostPort(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if host != "127.0.0.1" {
		t.Errorf("host = %q, want 127.0.0.1", host)
	}
	if port == "6379" {
		t.Error("harness used the machine's Redis port 6379")
	}
	if want := "redis://" + s.Addr + "/0"; s.URL() != want {
		t.Errorf("URL() = %q, want %q", s.URL(), want)
	}
	mustPong(t, s.Addr)
}

func TestURLWorksWithGoRedis(t *testing.T) {
	s := Start(t)
	opt, err := redis.ParseURL(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET k = %q, %v", got, err)
	}
	// No persistence: snapshots and AOF are off.
	cfg, err := c.ConfigGet(ctx, "save").Result()
	if err != nil {
		t.Fatal(err)
	}
	if cfg["save"] != "" {
		t.Errorf("save = %q, want empty", cfg["save"])
	}
	cfg, err = c.ConfigGet(ctx, "appendonly").Result()
	if err != nil {
		t.Fatal(err)
	}
	if cfg["appendonly"] != "no" {
		t.Errorf("appendonly = %q, want no", cfg["appendonly"])
	}
}

func TestTwoServersAreIndependent(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Addr == b.Addr {
		t.Fatalf("both servers on %s", a.Addr)
	}
	mustPong(t, a.Addr)
	mustPong(t, b.Addr)
}

func TestKillAndRestart(t *testing.T) {
	s := Start(t)
	addr := s.Addr
	mustPong(t, addr)

	if err := s.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	mustBeDown(t, addr)
	if err := s.Kill(); err != nil {
		t.Fatalf("second Kill: %v", err)
	}

	if err := s.Restart(); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if s.Addr != addr {
		t.Fatalf("Addr changed from %s to %s", addr, s.Addr)
	}
	mustPong(t, addr)

	// Restart of a running server replaces it.
	if err := s.Restart(); err != nil {
		t.Fatalf("Restart while running: %v", err)
	}
	mustPong(t, addr)
}

func TestRestartLosesData(t *testing.T) {
	s := Start(t)
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, "k").Err(); err == nil {
		t.Fatal("GET succeeded while Redis was down")
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	// The same client reconnects by itself; the key is gone.
	if err := c.Get(ctx, "k").Err(); err != redis.Nil {
		t.Fatalf("GET after restart: err = %v, want redis.Nil", err)
	}
}

func TestStop(t *testing.T) {
	s := Start(t)
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	mustBeDown(t, s.Addr)
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := s.Restart(); err != nil {
		t.Fatalf("Restart after Stop: %v", err)
	}
	mustPong(t, s.Addr)
}

func TestStartMain(t *testing.T) {
	s, stop, err := StartMain()
	if err != nil {
		t.Fatal(err)
	}
	mustPong(t, s.Addr)
	stop()
	mustBeDown(t, s.Addr)
	stop() // idempotent
}

func TestStartFailsWithoutRedisServer(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if _, _, err := StartMain(); err == nil || !strings.Contains(err.Error(), "make deps") {
		t.Fatalf("StartMain without redis-server: err = %v, want the `make deps` hint", err)
	}
}

func TestLaunchReportsBusyPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s := Start(t) // for the binary path
	busy := &Server{
		Addr: l.Addr().String(),
		Port: l.Addr().(*net.TCPAddr).Port,
		bin:  s.bin,
		dir:  t.TempDir(),
	}
	if err := busy.launch(); !errors.Is(err, errBind) {
		t.Fatalf("launch on a busy port: err = %v, want errBind", err)
	}
	if busy.proc != nil {
		t.Fatal("failed launch left a process behind")
	}
}

func TestDurableKeepsDataAcrossKillAndRestart(t *testing.T) {
	s := StartDurable(t)
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer rdb.Close()
	ctx := context.Background()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Get(ctx, "k").Err(); err == nil {
		t.Fatal("a killed server answered")
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if v, err := rdb.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("after restart: %q %v, want the value written before the crash", v, err)
	}
}

func TestPauseAndResume(t *testing.T) {
	s := Start(t)
	if err := s.Pause(); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	// A paused server accepts the connection (the kernel does) but answers nothing.
	conn, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		t.Fatalf("dial a paused server: %v", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 16)
	if n, err := conn.Read(buf); err == nil {
		t.Fatalf("a paused server answered %q", buf[:n])
	}
	if err := s.Resume(); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	// The PING sent while paused is answered now.
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || line != "+PONG\r\n" {
		t.Fatalf("after Resume: %q %v", line, err)
	}
	// Kill works on a paused server too.
	if err := s.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := s.Kill(); err != nil {
		t.Fatalf("Kill a paused server: %v", err)
	}
	if err := s.Pause(); err == nil {
		t.Fatal("Pause of a killed server succeeded")
	}
}
