package pool

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// CPU affinity (Config.CPUAffinity): worker slot i runs on the i-th of the
// CPUs this process may use, and so does the thread that serves its state
// socket.
//
// A state call is a synchronous round trip: the worker sleeps until the
// reply wakes it. When the two ends run on different CPUs, each direction
// costs an inter-processor wake-up, and on a virtual machine that is most of
// the round trip: measured on a 2-core VM, one worker made 50-65k state
// calls per second unpinned and 110-120k pinned. Letting only the serving
// thread follow the worker does not work: the kernel wakes the worker on the
// idle CPU, which is the other one.

// slotCPU returns the CPU for worker slot (>= 0): the slot-th allowed CPU,
// round robin.
func slotCPU(slot int) (int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return 0, fmt.Errorf("reading the CPUs this process may use: %w", err)
	}
	n := set.Count()
	if n == 0 {
		return 0, fmt.Errorf("this process may use no CPU")
	}
	k := slot % n
	for cpu := 0; ; cpu++ {
		if set.IsSet(cpu) {
			if k == 0 {
				return cpu, nil
			}
			k--
		}
	}
}

// pinThread locks the calling goroutine to its thread for good and keeps
// that thread on cpu. The thread, whose affinity no longer matches the
// runtime's others, ends with the goroutine instead of going back to the
// runtime's pool (the main thread, which cannot end, is parked for good).
func pinThread(cpu int) error {
	runtime.LockOSThread()
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("pinning the state thread to CPU %d: %w", cpu, err)
	}
	return nil
}
