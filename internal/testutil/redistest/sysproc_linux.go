//go:build linux

package redistest

import "syscall"

// sysProcAttr makes the kernel SIGKILL redis-server when the test binary dies (panic, timeout, SIGKILL), so no
// server outlives its tests.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
