package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Secrets of the bench stack (loopback only, made up for the run).
const (
	adminSecret    = "bench_admin_secret_0123456789"
	checkoutSecret = "bench_checkout_secret_0123456789"
	stripeKey      = "sk_test_billing_bench_0123456789"
	webhookSecret  = "whsec_billing_bench_0123456789"
)

// proc is a child process of the tool. It gets SIGKILL if the tool dies.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan error
	log  string
}

// startProc starts bin with args and env, output to dir/name.log.
func startProc(dir, name, bin string, args, env []string) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan error, 1), log: logPath}
	go func() { p.done <- cmd.Wait(); f.Close() }()
	return p, nil
}

// stop sends SIGTERM and waits (SIGKILL after 10 s).
func (p *proc) stop() {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// waitFor polls ready until it succeeds, the process exits or 15 s pass.
func (p *proc) waitFor(ready func() error) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := ready()
		if err == nil {
			return nil
		}
		select {
		case werr := <-p.done:
			p.done <- werr
			return fmt.Errorf("%s exited (%v) before it was ready; see %s", p.name, werr, p.log)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after 15s: %v; see %s", p.name, err, p.log)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// freePort returns a free loopback port (never Redis' default 6379).
func freePort() (int, error) {
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if port != 6379 {
			return port, nil
		}
	}
}

func httpReady(url string) func() error {
	return func() error {
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("%s: %d", url, resp.StatusCode)
		}
		return nil
	}
}

// stack is the bench's own redis-server, Stripe simulator and service.
type stack struct {
	dir      string
	redis    *proc
	sim      *proc
	service  *proc
	RedisURL string
	SimURL   string
	URL      string
	rdb      *redis.Client
	// -cluster: the cluster's masters (rdb is nil) and its stop func.
	masters     []*redis.Client
	stopCluster func()
}

// nodes are the Redis servers holding data: the masters, or the one server.
func (s *stack) nodes() []*redis.Client {
	if s.masters != nil {
		return s.masters
	}
	return []*redis.Client{s.rdb}
}

// startStack starts redis-server (no persistence), bin/stripe-sim (no
// webhook delivery) and bin/billing-adapter serve, each as its own process
// on loopback.
func startStack(ctx context.Context, o options) (*stack, error) {
	s := &stack{dir: o.workDir}
	ok := false
	defer func() {
		if !ok {
			s.stop()
		}
	}()
	redisEnv := []string{}
	if o.cluster {
		c, stop, masters, err := startClusterRedis(ctx)
		if err != nil {
			return nil, err
		}
		s.masters, s.stopCluster = masters, stop
		redisEnv = append(redisEnv, "REDIS_URL=", "REDIS_ADDRS="+strings.Join(c.Addrs(), ","))
	} else {
		redisPort, err := freePort()
		if err != nil {
			return nil, err
		}
		if s.redis, err = startProc(s.dir, "redis", o.redisServer, []string{
			"--port", strconv.Itoa(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", s.dir, "--protected-mode", "yes", "--maxmemory", "0"}, nil); err != nil {
			return nil, err
		}
		s.RedisURL = fmt.Sprintf("redis://127.0.0.1:%d/0", redisPort)
		opt, _ := redis.ParseURL(s.RedisURL)
		s.rdb = redis.NewClient(opt)
		if err := s.redis.waitFor(func() error { return s.rdb.Ping(ctx).Err() }); err != nil {
			return nil, err
		}
		redisEnv = append(redisEnv, "REDIS_URL="+s.RedisURL, "REDIS_ADDRS=")
	}

	simPort, err := freePort()
	if err != nil {
		return nil, err
	}
	s.SimURL = fmt.Sprintf("http://127.0.0.1:%d", simPort)
	if s.sim, err = startProc(s.dir, "stripe-sim", filepath.Join(o.binDir, "stripe-sim"),
		append([]string{"-addr", fmt.Sprintf("127.0.0.1:%d", simPort)}, o.simArgs...), nil); err != nil {
		return nil, err
	}
	if err := s.sim.waitFor(func() error {
		req, _ := http.NewRequest(http.MethodGet, s.SimURL+"/_sim/counts", nil)
		req.Header.Set("Authorization", "Bearer "+stripeKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}); err != nil {
		return nil, err
	}

	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	s.URL = "http://" + addr
	env := []string{
		"BILLING_ADDR=" + addr,
		"STRIPE_SECRET_KEY=" + stripeKey, "STRIPE_API_BASE=" + s.SimURL, "STRIPE_MAX_NETWORK_RETRIES=0",
		"STRIPE_WEBHOOK_SECRETS=" + webhookSecret,
		"BILLING_API_KEYS=bench-admin:admin:" + adminSecret + ",bench-checkout:checkout:" + checkoutSecret,
		"LOG_FORMAT=json", "LOG_LEVEL=info",
	}
	env = append(env, redisEnv...)
	if s.service, err = startProc(s.dir, "billing-adapter", filepath.Join(o.binDir, "billing-adapter"),
		[]string{"serve"}, env); err != nil {
		return nil, err
	}
	if err := s.service.waitFor(httpReady(s.URL + "/readyz")); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

func (s *stack) stop() {
	if s == nil {
		return
	}
	s.service.stop()
	s.sim.stop()
	if s.rdb != nil {
		s.rdb.Close()
	}
	s.redis.stop()
	for _, m := range s.masters {
		m.Close()
	}
	if s.stopCluster != nil {
		s.stopCluster()
	}
}

// commandStats reads INFO commandstats.
func (s *stack) commandStats(ctx context.Context) (CommandStats, error) {
	sum := CommandStats{}
	for _, rdb := range s.nodes() {
		info, err := rdb.Info(ctx, "commandstats").Result()
		if err != nil {
			return nil, err
		}
		for k, v := range parseCommandStats(info) {
			sum[k] += v
		}
	}
	return sum, nil
}

// startBaseline runs this tool's baseline-server of kind as its own process.
func startBaseline(o options, s *stack, kind string, trips, dupTrips int) (*proc, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p, err := startProc(s.dir, "baseline-"+kind, self, []string{"baseline-server", "-kind", kind, "-addr", addr,
		"-redis-url", s.RedisURL, "-trips", strconv.Itoa(trips), "-dup-trips", strconv.Itoa(dupTrips),
		"-secret", webhookSecret}, nil)
	if err != nil {
		return nil, "", err
	}
	if err := p.waitFor(httpReady("http://" + addr + "/healthz")); err != nil {
		p.stop()
		return nil, "", err
	}
	return p, "http://" + addr, nil
}

var errUsage = errors.New("usage")

func pingURL(ctx context.Context, url string) error {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return err
	}
	c := redis.NewClient(opt)
	defer c.Close()
	return c.Ping(ctx).Err()
}

// procCPU is the CPU time (user + system) the process has used so far,
// from /proc/<pid>/stat; -1 when it cannot be read (not Linux).
func procCPU(p *proc) time.Duration {
	if p == nil || p.cmd.Process == nil {
		return -1
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// fields 14 and 15 (utime, stime) count from after its ')'.
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return -1
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / ticks
}
