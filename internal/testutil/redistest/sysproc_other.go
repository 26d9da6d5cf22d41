//go:build !linux

package redistest

import "syscall"

// sysProcAttr has no parent-death signal outside Linux; cleanup relies on t.Cleanup and the stop func.
func sysProcAttr() *syscall.SysProcAttr { return nil }
