//go:build !unix

package redistest

import "syscall"

// stopSignal and contSignal are zero where processes cannot be frozen: Pause and Resume fail there.
var stopSignal, contSignal syscall.Signal
