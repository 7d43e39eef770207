//go:build !linux

package worker

import "errors"

// pin is Linux only (see affinity_linux.go).
func pin(cpu int) error { return errors.New("--cpu-affinity is supported on Linux only") }
