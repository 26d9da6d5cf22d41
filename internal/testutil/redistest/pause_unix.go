//go:build unix

package redistest

import "syscall"

// stopSignal and contSignal freeze and continue a process (Pause, Resume).
var stopSignal, contSignal = syscall.SIGSTOP, syscall.SIGCONT
