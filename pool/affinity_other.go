//go:build !linux

package pool

import "errors"

var errNoAffinity = errors.New("CPU affinity is only supported on Linux")

func slotCPU(slot int) (int, error) { return 0, errNoAffinity }

func pinThread(cpu int) error { return errNoAffinity }
