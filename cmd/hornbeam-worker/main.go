// Command hornbeam-worker is hornbeam's embedded worker built as a shared
// library, for the interpreter to load rather than the other way round:
//
//	go build -buildmode=c-shared -o hornbeam-worker.so ./cmd/hornbeam-worker
//
// The server starts each embedded worker as the user's own python3, which
// loads this library with ctypes and calls HornbeamWorker from its main
// thread (package worker's HostedArgs; with --preload a zygote that has
// imported the app forks first, python/hornbeam/_worker.py). The worker
// then runs exactly as the hornbeam binary's worker does, on the python3
// executable's interpreter, with no shared libpython needed. It needs cgo
// (a C compiler) to build.
package main

/*
extern char **environ;
*/
import "C"

import (
	"os"
	"strings"
	"unsafe"

	"github.com/hornbeam-go/hornbeam"
	"github.com/hornbeam-go/hornbeam/internal/cpython"
)

// HornbeamWorker runs the worker and returns its exit status. It must be
// called from the interpreter's main thread with the GIL released (any
// ctypes.CDLL function call is).
//
//export HornbeamWorker
func HornbeamWorker() C.int {
	syncEnv()
	return C.int(cpython.RunHosted(hornbeam.WorkerMain))
}

// syncEnv gives Go the process's environment as it is now. Go's runtime
// read it when the library was loaded, from the block the process started
// with; what Python set since (os.environ in a forked worker: its
// configuration) is only in C's environ.
func syncEnv() {
	if C.environ == nil {
		return
	}
	n := 0
	for p := C.environ; *(**C.char)(unsafe.Add(unsafe.Pointer(p), n*int(unsafe.Sizeof(p)))) != nil; {
		n++
	}
	for _, kv := range unsafe.Slice((**C.char)(unsafe.Pointer(C.environ)), n) {
		if k, v, ok := strings.Cut(C.GoString(kv), "="); ok && k != "" {
			os.Setenv(k, v)
		}
	}
}

func main() {}
