// Command hornbeam-worker is hornbeam's embedded worker built as a shared
// library, for the interpreter to load rather than the other way round:
//
//	go build -buildmode=c-shared -o hornbeam-worker.so ./cmd/hornbeam-worker
//
// The server starts each embedded worker as the user's own python3, which
// loads this library with ctypes and calls HornbeamWorker from its main
// thread (python/hornbeam/_hosted.py). The worker then runs exactly as the
// hornbeam binary's worker does, on the python3 executable's interpreter,
// with no shared libpython needed. It needs cgo (a C compiler) to build.
package main

import "C"

import (
	"github.com/hornbeam-go/hornbeam"
	"github.com/hornbeam-go/hornbeam/internal/cpython"
)

// HornbeamWorker runs the worker and returns its exit status. It must be
// called from the interpreter's main thread with the GIL released (any
// ctypes.CDLL function call is).
//
//export HornbeamWorker
func HornbeamWorker() C.int {
	return C.int(cpython.RunHosted(hornbeam.WorkerMain))
}

func main() {}
