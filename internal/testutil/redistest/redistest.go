// Package redistest runs a real redis-server for tests.
//
// Each server listens on a free loopback port (never 6379, so the machine's own Redis is never touched), keeps no
// data on disk (no RDB snapshots, no AOF) and lives in its own temporary directory. Use Start for one server per test,
// or StartMain in TestMain for one server shared by a whole package:
//
//	var redisSrv *redistest.Server
//
//	func TestMain(m *testing.M) {
//		srv, stop, err := redistest.StartMain()
//		if err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			os.Exit(1)
//		}
//		redisSrv = srv
//		code := m.Run()
//		stop() // os.Exit skips deferred calls
//		os.Exit(code)
//	}
//
// Tests that share a server must use distinct keys (or FLUSHDB between tests and not run in parallel).
// Kill and Restart let a test simulate Redis going away and coming back on the same address; Pause and Resume, a
// server that hangs (a frozen VM, a partition: connections stay open, nothing answers).
//
// StartCluster runs a whole Redis Cluster (masters and replicas) on loopback, with helpers to find the master of a
// key's slot, kill it and wait for its replica's promotion: see cluster.go.
//
// On Linux the server gets SIGKILL when the test binary dies, so a crashed or timed-out test leaves no orphan.
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// readyTimeout bounds how long a start waits for PING to answer.
	readyTimeout = 10 * time.Second
	// stopTimeout bounds how long Stop waits for a graceful exit before it kills.
	stopTimeout = 10 * time.Second
	// portAttempts is how many free ports Start tries when redis-server cannot bind.
	portAttempts = 5
	// logLimit caps the redis-server output kept for error messages.
	logLimit = 64 << 10
	// machineRedisPort is never used: it belongs to the machine's own Redis.
	machineRedisPort = 6379
)

// notFoundMsg is the failure when redis-server is not installed.
const notFoundMsg = "redis-server not found: run `make deps` (apt-get install redis-server)"

// Server is a redis-server child process listening on 127.0.0.1.
type Server struct {
	// Addr is "127.0.0.1:PORT"; it stays the same across Kill and Restart.
	Addr string
	// Port is the TCP port of Addr.
	Port int

	bin string
	dir string
	// durable: append-only file fsynced on every write, so a Kill and
	// Restart keep the data (see StartDurable).
	durable bool
	// cluster: a Redis Cluster node (see StartCluster); nil otherwise.
	cluster *clusterNodeConfig
	// BusPort is the cluster bus port of a cluster node (0 for a plain server); like Addr it survives Restart.
	BusPort int

	mu      sync.Mutex
	proc    *process    // nil when not running
	paused  bool        // frozen by Pause
	lastLog *tailBuffer // output of the latest run, kept after it ends
}

// process is one run of redis-server.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd.Wait returns
	err  error         // cmd.Wait's result, valid after done
}

// Start launches a redis-server for the test and stops it (SIGKILL) when the test and its subtests finish.
// It fails the test if redis-server is missing or does not answer PING within 10 seconds.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal(notFoundMsg)
	}
	s, err := start(bin, t.TempDir())
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if tail := s.logTail(); tail != "" {
				t.Logf("redistest: redis-server %s output:\n%s", s.Addr, tail)
			}
		}
		if err := s.Kill(); err != nil {
			t.Errorf("redistest: %v", err)
		}
	})
	return s
}

// StartDurable is Start with persistence: an append-only file fsynced on
// every write, so that Kill followed by Restart brings the same data back, as
// a production Redis with AOF would after a crash.
func StartDurable(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal(notFoundMsg)
	}
	s, err := startWith(bin, t.TempDir(), true)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Kill(); err != nil {
			t.Errorf("redistest: %v", err)
		}
	})
	return s
}

// StartMain is Start for TestMain: it returns a stop func (kill the server, remove its directory) instead of
// registering a cleanup. Call stop before os.Exit; it is safe to call more than once.
func StartMain() (*Server, func(), error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, nil, errors.New(notFoundMsg)
	}
	return startInDir("redistest-", func(dir string) (*Server, error) { return start(bin, dir) }, (*Server).Kill)
}

// startInDir starts something in a new temporary directory and returns it
// with a stop that kills it (once) and removes the directory.
func startInDir[T any](prefix string, start func(dir string) (T, error), kill func(T) error) (T, func(), error) {
	var zero T
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return zero, nil, fmt.Errorf("redistest: %w", err)
	}
	x, err := start(dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return zero, nil, fmt.Errorf("redistest: %w", err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			if err := kill(x); err != nil {
				fmt.Fprintf(os.Stderr, "redistest: %v\n", err)
			}
			_ = os.RemoveAll(dir)
		})
	}
	return x, stop, nil
}

// start picks a free port and launches redis-server on it, trying another port if the bind fails.
func start(bin, dir string) (*Server, error) { return startWith(bin, dir, false) }

func startWith(bin, dir string, durable bool) (*Server, error) {
	return startNode(bin, dir, durable, nil)
}

// startNode is startWith for a plain server (cluster nil) or a cluster node, which also needs a free bus port.
func startNode(bin, dir string, durable bool, cluster *clusterNodeConfig) (*Server, error) {
	var lastErr error
	for attempt := 0; attempt < portAttempts; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s := &Server{
			Addr:    net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
			Port:    port,
			bin:     bin,
			dir:     dir,
			durable: durable,
			cluster: cluster,
		}
		if cluster != nil {
			if s.BusPort, err = freePort(); err != nil {
				return nil, err
			}
			if s.BusPort == port {
				lastErr = fmt.Errorf("%w: bus port = port %d", errBind, port)
				continue
			}
		}
		err = s.launch()
		if err == nil {
			return s, nil
		}
		lastErr = err
		if !errors.Is(err, errBind) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("no usable port after %d attempts: %w", portAttempts, lastErr)
}

// URL is the go-redis URL of database 0: "redis://127.0.0.1:PORT/0".
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

// Kill sends SIGKILL and waits for the process to exit, as if Redis crashed. The address then refuses
// connections until Restart. Killing a server that is not running is a no-op.
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.killLocked()
}

func (s *Server) killLocked() error {
	p := s.proc
	if p == nil {
		return nil
	}
	s.proc, s.paused = nil, false
	select {
	case <-p.done:
		return nil // already exited on its own
	default:
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill redis-server %s: %w", s.Addr, err)
	}
	<-p.done
	return nil
}

// Pause freezes the server (SIGSTOP): its connections stay open but nothing is answered, as with a hung process
// or a network partition. Resume (or Kill) ends it. Pausing a server that is not running is an error.
func (s *Server) Pause() error { return s.signal(stopSignal, true) }

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() error { return s.signal(contSignal, false) }

func (s *Server) signal(sig syscall.Signal, paused bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return fmt.Errorf("redis-server %s is not running", s.Addr)
	}
	if sig == 0 {
		return errors.New("redistest: Pause and Resume need a Unix system")
	}
	if err := s.proc.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("%v redis-server %s: %w", sig, s.Addr, err)
	}
	s.paused = paused
	return nil
}

// Stop shuts the server down gracefully (SIGTERM, which with persistence off saves nothing) and waits; after
// 10 seconds it kills. Stopping a server that is not running is a no-op.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc
	if p == nil {
		return nil
	}
	s.proc, s.paused = nil, false
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop redis-server %s: %w", s.Addr, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(stopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("redis-server %s ignored SIGTERM for %v; killed", s.Addr, stopTimeout)
	}
}

// Restart starts the server again on the same address and waits until it answers PING. The data set starts
// empty, unless the server is durable (StartDurable). A server that is still running is killed first.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.killLocked(); err != nil {
		return err
	}
	var err error
	// The port was ours a moment ago, but another process may grab it in between; retry briefly.
	for attempt := 0; attempt < portAttempts; attempt++ {
		if err = s.launchLocked(); err == nil || !errors.Is(err, errBind) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
	return err
}

// errBind marks a start that failed because the port was taken.
var errBind = errors.New("redis-server could not bind its port")

func (s *Server) launch() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.launchLocked()
}

// launchLocked starts redis-server on s.Port and waits until it answers PING.
func (s *Server) launchLocked() error {
	if s.Port == machineRedisPort {
		return fmt.Errorf("refusing to use port %d (the machine's own Redis)", machineRedisPort)
	}
	appendOnly := []string{"--appendonly", "no"}
	if s.durable {
		appendOnly = []string{"--appendonly", "yes", "--appendfsync", "always"}
	}
	args := append([]string{
		"--port", strconv.Itoa(s.Port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--dir", s.dir,
		"--protected-mode", "yes",
	}, appendOnly...)
	if s.cluster != nil {
		args = append(args, s.cluster.args(s.BusPort)...)
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.dir
	log := &tailBuffer{limit: logLimit}
	cmd.Stdout = log
	cmd.Stderr = log
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	s.proc = p
	s.lastLog = log

	if err := waitReady(s.Addr, p); err != nil {
		_ = s.killLocked()
		out := log.String()
		if strings.Contains(out, "Address already in use") {
			err = fmt.Errorf("%w %d: %v", errBind, s.Port, err)
		}
		return fmt.Errorf("%w\nredis-server output:\n%s", err, out)
	}
	return nil
}

// waitReady polls addr until our process answers PING. It checks the answering process's id so a foreign
// server that won the race for the port is never mistaken for ours.
func waitReady(addr string, p *process) error {
	deadline := time.Now().Add(readyTimeout)
	var lastErr error
	for {
		select {
		case <-p.done:
			return fmt.Errorf("redis-server exited before it was ready: %v", p.err)
		default:
		}
		pid, err := pingPID(addr)
		if err == nil {
			if pid == p.cmd.Process.Pid {
				return nil
			}
			lastErr = fmt.Errorf("%s is answered by another redis (pid %d)", addr, pid)
		} else {
			lastErr = err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server on %s not ready after %v: %v", addr, readyTimeout, lastErr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pingPID sends PING and INFO server on one connection and returns the server's process_id.
func pingPID(addr string) (int, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(conn, "PING\r\nINFO server\r\n"); err != nil {
		return 0, err
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	if line != "+PONG\r\n" {
		return 0, fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	header, err := r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	if !strings.HasPrefix(header, "$") {
		return 0, fmt.Errorf("INFO answered %q", strings.TrimSpace(header))
	}
	n, err := strconv.Atoi(strings.TrimSpace(header[1:]))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("INFO answered %q", strings.TrimSpace(header))
	}
	body := make([]byte, n+2)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(body), "\r\n") {
		if v, ok := strings.CutPrefix(l, "process_id:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, errors.New("INFO server has no process_id")
}

// freePort asks the kernel for a free loopback port. Another process can take it before redis-server binds;
// callers retry on errBind.
func freePort() (int, error) {
	for i := 0; i < 10; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if port != machineRedisPort {
			return port, nil
		}
	}
	return 0, errors.New("find a free port: kernel keeps returning 6379")
}

func (s *Server) logTail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastLog == nil {
		return ""
	}
	return s.lastLog.String()
}

// tailBuffer keeps the last limit bytes written to it; safe for concurrent use.
type tailBuffer struct {
	mu    sync.Mutex
	limit int
	buf   []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.limit; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
