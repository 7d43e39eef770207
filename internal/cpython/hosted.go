package cpython

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/ebitengine/purego"
)

// A hosted process is the other way round from Start's usual one: a
// Python interpreter (the user's python3 executable, which needs no shared
// libpython) that loaded hornbeam's Go side as a shared library (package
// cmd/hornbeam-worker, built with -buildmode=c-shared) and called its
// exported entry point from its main thread through ctypes, which released
// the GIL. RunHosted runs there: Start then binds the interpreter's own
// symbols instead of loading libpython, and that main thread serves as
// Python's main thread (module-level code of the app's import runs on it,
// as in python3 itself).

// hostThread is the main thread of a hosted process, waiting for Start.
type hostThread struct {
	interp chan hostedStart
}

type hostedStart struct {
	py  *Interp
	opt Options
}

// host is set while RunHosted runs: one interpreter per process, as
// started is.
var host atomic.Pointer[hostThread]

// RunHosted runs run (a worker's main) in a hosted process and returns its
// result. It must be called from the interpreter's main thread with the
// GIL released (a ctypes.CDLL call) and returns with it released.
func RunHosted(run func() int) int {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	h := &hostThread{interp: make(chan hostedStart)}
	if !host.CompareAndSwap(nil, h) {
		fmt.Fprintln(os.Stderr, "hornbeam: RunHosted called twice in one process")
		return 2
	}
	done := make(chan int, 1)
	stop := make(chan struct{})
	go func() {
		rc := run()
		done <- rc
		close(stop)
	}()
	select {
	case rc := <-done:
		return rc
	case s := <-h.interp:
		s.py.mainThread(s.opt, stop)
	}
	return <-done
}

// adoptSymbols binds the symbols of the interpreter this process runs.
func (py *Interp) adoptSymbols() error {
	a, err := bind(purego.RTLD_DEFAULT, "this python process")
	if err != nil {
		return err
	}
	py.a, py.lib, py.hosted = a, purego.RTLD_DEFAULT, true
	ver := gostring(call0(a.GetVersion)) // "3.11.2 (main, ...) [GCC ...]"
	num := strings.Fields(ver + " ?")[0]
	parts := strings.SplitN(num, ".", 3)
	major, _ := strconv.Atoi(parts[0])
	minor := 0
	if len(parts) > 1 {
		minor, _ = strconv.Atoi(parts[1])
	}
	if major != 3 || minor < 8 {
		return fmt.Errorf("this process is Python %s: hornbeam needs CPython 3.8 or later", num)
	}
	if py.Install == nil {
		exe, _ := os.Executable()
		py.Install = &Install{Python: exe, Executable: exe}
	}
	py.Install.Version, py.Install.Major, py.Install.Minor = num, major, minor
	return nil
}

// adopt is initialize for a hosted process: the interpreter runs already;
// this thread is its main thread, whose thread state ctypes detached.
func (py *Interp) adopt(opt Options) error {
	ts := call0(py.a.GILStateGetThisThreadState)
	if ts == 0 {
		return errors.New("cpython: RunHosted was not called from a Python thread")
	}
	call1(py.a.RestoreThread, ts)
	py.none = py.a.noneStruct
	py.interp = call0(py.a.InterpreterStateMain)
	if err := py.bootstrap(opt); err != nil {
		call0(py.a.SaveThread) // back to ctypes as it came: without the GIL
		return err
	}
	return nil
}

// Hosted reports whether this process is a Python interpreter running
// hornbeam through RunHosted: Start needs no Install then.
func Hosted() bool { return host.Load() != nil }
