package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"testing"
)

// childEnv makes the test binary run `billing-adapter serve` instead of the
// tests, so a test can run the service as a real process and SIGKILL it.
const childEnv = "BILLING_E2E_CHILD"

// runChild is the child process's main.
func runChild() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, []string{"serve"}, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "billing-adapter:", err)
		return 1
	}
	return 0
}

// child is a service running as its own process on the stack.
type child struct {
	*service
	cmd    *exec.Cmd
	exited chan error
	once   sync.Once
}

// startChild runs the service as a subprocess (the re-executed test binary).
func (st *stack) startChild(t *testing.T, env map[string]string) *child {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	for k, v := range st.serviceEnv(addr, env) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{service: &service{stack: st, URL: "http://" + addr, logs: logs}, cmd: cmd, exited: make(chan error, 1)}
	go func() { c.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		c.kill()
		if t.Failed() {
			t.Logf("child %s logs:\n%s", addr, logs.String())
		}
	})
	waitHealthy(t, c.URL, func() error {
		select {
		case err := <-c.exited:
			return fmt.Errorf("child exited early: %v\n%s", err, logs.String())
		default:
			return nil
		}
	})
	return c
}

// kill sends SIGKILL (no graceful shutdown, no deferred cleanup) and waits.
func (c *child) kill() {
	c.once.Do(func() {
		_ = c.cmd.Process.Signal(syscall.SIGKILL)
		<-c.exited
	})
}
