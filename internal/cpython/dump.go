package cpython

import (
	"fmt"

	"github.com/ebitengine/purego"
)

// DumpTracebacks writes the Python stack of every thread of the
// interpreter to the file descriptor fd, as faulthandler does from a
// signal handler: without the GIL, so it shows where a request is stuck
// even while that request holds the GIL (a best effort, like
// faulthandler's: the frames are read while the threads run).
func (py *Interp) DumpTracebacks(fd uintptr) error {
	// Exported by CPython 3.8 and later for faulthandler; not stable ABI.
	sym, err := purego.Dlsym(py.lib, "_Py_DumpTracebackThreads")
	if err != nil {
		return fmt.Errorf("cpython: dumping the Python stacks: %w", err)
	}
	if msg, _, _ := purego.SyscallN(sym, fd, py.interp, 0); msg != 0 {
		return fmt.Errorf("cpython: dumping the Python stacks failed")
	}
	return nil
}
