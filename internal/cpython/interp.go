// Package cpython loads CPython's shared library at run time, without cgo
// (github.com/ebitengine/purego), and calls into it from Go.
//
// One interpreter per process: Start initialises it on a goroutine locked
// to its own OS thread, which stays Python's main thread (module-level code
// of an import done with OnMain runs there; Py_FinalizeEx too). Requests
// call Python from their own goroutine:
//
//	slot := py.Enter()  // take a gate slot, lock the OS thread, take the GIL
//	r, err := py.CallOneArg(fn, arg)
//	...
//	py.Leave(slot)      // release the GIL and the slot
//
// Enter gives each OS thread one permanent PyThreadState, made the first
// time that thread calls Python and reused after (PyGILState_Ensure per call
// is slower). The gate is a Go semaphore of Options.Threads slots taken
// before the GIL: with one slot the callers queue on the gate instead of on
// the GIL (OS threads contending on the GIL directly measured 3x slower in
// a prototype), and a caller parks as a goroutine, not as an OS thread.
//
// Python's signal handlers are not installed (Py_InitializeEx(0)): Go owns
// the signals. Object methods must be called between Enter and Leave (or in
// an OnMain function), except DecRefLater.
package cpython

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hornbeam-go/hornbeam/pymarshal"
)

// Object is a PyObject*. Unless a method says otherwise, an Object it
// returns is a new reference the caller must DecRef.
type Object uintptr

// Options configure Start.
type Options struct {
	// Argv becomes sys.argv (default: os.Args).
	Argv []string
	// Path entries go in front of sys.path, in this order.
	Path []string
	// Threads is how many goroutines may be inside Python at once (the
	// gate's slots; default 1). With more than one, a call that releases
	// the GIL (I/O, time.sleep) lets another run meanwhile.
	Threads int
	// Unbuffered sets PYTHONUNBUFFERED=1 before start-up, as the worker
	// processes have it: print() reaches stdout at once.
	Unbuffered bool
}

// Interp is the process's Python interpreter.
type Interp struct {
	Install *Install
	a       *api
	lib     uintptr
	interp  uintptr // PyInterpreterState*
	hosted  bool    // the process is the interpreter (RunHosted): never finalised here
	gate    gate
	threads int
	slotTS  []uintptr // the thread state running in each slot of the gate

	funcsMu sync.Mutex
	funcs   []func(Object) Object // NewFunction's, by index

	main    chan mainJob // jobs for the main thread
	mainErr chan error

	none      uintptr
	globals   Object // the bootstrap's namespace (helpers below)
	formatExc Object // _format_exc(t, v, tb) -> "name\0message\0traceback"

	pendMu  sync.Mutex
	pending []Object // DecRefLater's, dropped at the next Enter
	npend   atomic.Int32

	closed atomic.Bool
}

var (
	startMu sync.Mutex
	started *Interp
)

// ErrStarted is returned by a second Start in one process: CPython cannot
// be initialised twice (nor again after finalisation).
var ErrStarted = errors.New("cpython: an interpreter was already started in this process")

// ErrClosed is returned once the interpreter has been finalised.
var ErrClosed = errors.New("cpython: the interpreter is closed")

// Start loads inst's libpython and initialises the interpreter with the
// program name set to inst.Executable (so a venv's interpreter finds its
// site-packages and sys.executable is the real interpreter, never this
// binary). Only one interpreter per process.
func Start(inst *Install, opt Options) (*Interp, error) {
	startMu.Lock()
	defer startMu.Unlock()
	if started != nil {
		return nil, ErrStarted
	}
	if opt.Threads < 1 {
		opt.Threads = 1
	}
	if opt.Argv == nil {
		opt.Argv = os.Args
	}
	py := &Interp{Install: inst, threads: opt.Threads, main: make(chan mainJob), mainErr: make(chan error, 1)}
	py.gate.init(opt.Threads)
	py.slotTS = make([]uintptr, opt.Threads)
	if h := host.Load(); h != nil {
		// This process is a Python interpreter running RunHosted: its main
		// thread serves as Python's main thread here.
		if err := py.adoptSymbols(); err != nil {
			return nil, err
		}
		h.interp <- hostedStart{py, opt}
	} else {
		if inst == nil {
			return nil, errors.New("cpython: Start needs an Install outside a hosted process")
		}
		go py.mainThread(opt, nil)
	}
	if err := <-py.mainErr; err != nil {
		return nil, err
	}
	started = py
	return py, nil
}

// Threads is the number of goroutines that may be inside Python at once.
func (py *Interp) Threads() int { return py.threads }

// mainThread initialises Python on this goroutine's OS thread, which stays
// locked: it is Python's main thread, and runs OnMain jobs and the
// finalisation.
//
// In a hosted process (RunHosted) it runs on the interpreter's own main
// thread instead, which adopts rather than initialises, and returns when
// stop is closed as well: with the GIL released, as it came.
func (py *Interp) mainThread(opt Options, stop <-chan struct{}) {
	init := py.initialize
	if py.hosted {
		init = py.adopt // RunHosted has locked this thread, and unlocks it
	} else {
		runtime.LockOSThread() // never unlocked
	}
	if err := init(opt); err != nil {
		py.mainErr <- err
		return
	}
	ts := call0(py.a.SaveThread) // the GIL is taken only when needed from now on
	py.mainErr <- nil
	for {
		var job mainJob
		select {
		case job = <-py.main:
		case <-stop:
			return
		}
		if job.final {
			// Close holds every slot: nobody else is inside Python.
			call1(py.a.RestoreThread, ts)
			job.f()
			if py.hosted {
				call0(py.a.SaveThread) // the host finalises, after RunHosted returns
			}
			return // finalised: the thread state is gone
		}
		slot := py.gate.lock()
		call1(py.a.RestoreThread, ts)
		py.slotTS[slot] = ts
		py.dropPending()
		job.f()
		py.slotTS[slot] = 0
		ts = call0(py.a.SaveThread)
		py.gate.unlock(slot)
	}
}

func (py *Interp) initialize(opt Options) error {
	a, lib, err := load(py.Install.Library)
	if err != nil {
		return err
	}
	py.a, py.lib = a, lib
	ver := gostring(call0(a.GetVersion))
	want := fmt.Sprintf("%d.%d.", py.Install.Major, py.Install.Minor)
	if !strings.HasPrefix(ver, want) {
		return fmt.Errorf("%s is Python %s, but %s is Python %s", py.Install.Library, strings.Fields(ver + " ?")[0], py.Install.Python, py.Install.Version)
	}
	if opt.Unbuffered {
		os.Setenv("PYTHONUNBUFFERED", "1")
	}
	// The program name decides sys.executable and, through getpath, the
	// prefixes: a venv's bin/python gives the venv's site-packages. Python
	// keeps a copy; Py_DecodeLocale decodes as Python decodes argv.
	name := call2(a.DecodeLocale, uintptr(unsafePtr(cstring(py.Install.Executable))), 0)
	if name == 0 {
		return fmt.Errorf("cannot decode the interpreter path %q", py.Install.Executable)
	}
	call1(a.SetProgramName, name)
	call1(a.InitializeEx, 0) // 0: no Python signal handlers
	py.none = a.noneStruct
	py.interp = call0(a.InterpreterStateMain)
	return py.bootstrap(opt)
}

// bootstrap sets sys.argv and sys.path and defines the helpers.
const bootstrapCode = `
import sys
import threading  # here, so that threading.main_thread() is this thread
sys.argv = _ARGV
sys.path[0:0] = _PATH

def _format_exc(t, v, tb):
    """name, message and traceback of an exception, NUL-separated."""
    name = getattr(t, "__qualname__", None) or getattr(t, "__name__", "exception")
    mod = getattr(t, "__module__", "builtins")
    if mod not in ("builtins", "__main__", None):
        name = mod + "." + name
    try:
        msg = str(v) if v is not None else ""
    except BaseException:
        msg = "<unprintable %s object>" % name
    try:
        import traceback
        text = "".join(traceback.format_exception(t, v, tb))
    except BaseException:
        text = "%s: %s\n" % (name, msg)
    return "\0".join((name, msg.replace("\0", "\\0"), text.replace("\0", "\\0")))
`

func (py *Interp) bootstrap(opt Options) error {
	g := Object(call0(py.a.DictNew))
	py.globals = g
	if call3(py.a.DictSetItemString, uintptr(g), uintptr(unsafePtr(cstring("__builtins__"))), call0(py.a.EvalGetBuiltins)) != 0 {
		return py.Err()
	}
	for _, v := range []struct {
		name string
		list []string
	}{{"_ARGV", opt.Argv}, {"_PATH", opt.Path}} {
		var e pymarshal.Encoder
		e.BeginList(len(v.list))
		for _, s := range v.list {
			e.Str(s)
		}
		o, err := py.FromMarshal(e.Data())
		if err != nil {
			return err
		}
		err = py.SetItem(g, v.name, o)
		py.DecRef(o)
		if err != nil {
			return err
		}
	}
	if err := py.Exec(bootstrapCode, "<hornbeam bootstrap>", g); err != nil {
		return err
	}
	f, err := py.Item(g, "_format_exc")
	if err != nil {
		return err
	}
	py.formatExc = f
	return nil
}

// Enter takes a slot of the gate, locks the calling goroutine to its OS
// thread and takes the GIL, with this OS thread's own thread state. It returns
// the slot (0 <= slot < Threads), which Leave takes back.
func (py *Interp) Enter() int {
	slot := py.gate.lock()
	py.enter(slot)
	return slot
}

// EnterOr is Enter unless a or b (either may be nil) is closed before a
// slot is free: then it returns false, without the GIL.
func (py *Interp) EnterOr(a, b <-chan struct{}) (int, bool) {
	slot, ok := py.gate.lockOr(a, b)
	if ok {
		py.enter(slot)
	}
	return slot, ok
}

func (py *Interp) enter(slot int) {
	// The gate first: a goroutine waiting for it parks alone, while one
	// locked to its thread would park the thread with it (an OS context
	// switch per wait).
	runtime.LockOSThread()
	ts := call0(py.a.GILStateGetThisThreadState)
	if ts == 0 {
		// First call from this OS thread: its permanent thread state.
		// PyThreadState_New also makes it the thread's PyGILState state,
		// so C extensions calling PyGILState_Ensure here find it.
		ts = call1(py.a.ThreadStateNew, py.interp)
	}
	call1(py.a.RestoreThread, ts)
	py.slotTS[slot] = ts
	if py.npend.Load() != 0 {
		py.dropPending()
	}
}

// Leave releases the GIL and the gate slot, and unlocks the OS thread.
func (py *Interp) Leave(slot int) {
	py.slotTS[slot] = 0
	call0(py.a.SaveThread)
	runtime.UnlockOSThread()
	py.gate.unlock(slot)
}

// EnterAlone takes the GIL without a gate slot, on a locked OS thread
// with its own thread state: for diagnostics while the slots may be held
// by a call that does not return (a stack dump). It blocks until the GIL
// is free; Python code releases it every few milliseconds when asked.
func (py *Interp) EnterAlone() {
	runtime.LockOSThread()
	ts := call0(py.a.GILStateGetThisThreadState)
	if ts == 0 {
		ts = call1(py.a.ThreadStateNew, py.interp)
	}
	call1(py.a.RestoreThread, ts)
}

// LeaveAlone releases the GIL taken by EnterAlone.
func (py *Interp) LeaveAlone() {
	call0(py.a.SaveThread)
	runtime.UnlockOSThread()
}

// CurrentSlot returns the slot of the caller that holds the GIL on this
// thread (for a Go function called from Python, see NewFunction), or -1
// when Python code calls from a thread of its own.
func (py *Interp) CurrentSlot() int {
	ts := call0(py.a.ThreadStateGet)
	for i, t := range py.slotTS {
		if t == ts {
			return i
		}
	}
	return -1
}

// Unblock runs f with the GIL released, from a Go function called by
// Python (NewFunction) or between Enter and Leave: other Python threads
// run meanwhile, while the gate slot stays taken. f must not call Python.
func (py *Interp) Unblock(f func()) {
	ts := call0(py.a.SaveThread)
	defer call1(py.a.RestoreThread, ts)
	f()
}

// OnMain runs f on Python's main thread with the GIL held (module-level
// code that must run there: an application's import).
func (py *Interp) OnMain(f func()) error {
	if py.closed.Load() {
		return ErrClosed
	}
	done := make(chan struct{})
	py.main <- mainJob{f: func() { defer close(done); f() }}
	<-done
	return nil
}

// mainJob is a function for the main thread; final is the finalisation,
// run while Close holds every gate slot.
type mainJob struct {
	f     func()
	final bool
}

// Close finalises the interpreter on its main thread (atexit handlers run,
// non-daemon Python threads are waited for) once every caller inside
// Python has left: it takes all the gate slots and keeps them, so a later
// Enter waits forever. No Python call may follow.
func (py *Interp) Close() error {
	if !py.closed.CompareAndSwap(false, true) {
		return nil
	}
	for i := 0; i < py.threads; i++ {
		py.gate.lock()
	}
	var rc uintptr
	done := make(chan struct{})
	py.main <- mainJob{final: true, f: func() {
		defer close(done)
		py.DecRef(py.formatExc)
		py.DecRef(py.globals)
		py.dropPending()
		if !py.hosted {
			rc = call0(py.a.FinalizeEx)
		}
	}}
	<-done
	if int32(rc) != 0 {
		return errors.New("cpython: Py_FinalizeEx failed (flushing buffered data)")
	}
	return nil
}

// DecRefLater drops a reference at the next Enter: for an Object used
// after Leave (a response body written to the client without the GIL).
func (py *Interp) DecRefLater(o Object) {
	if o == 0 {
		return
	}
	py.pendMu.Lock()
	py.pending = append(py.pending, o)
	py.npend.Store(int32(len(py.pending)))
	py.pendMu.Unlock()
}

func (py *Interp) dropPending() {
	py.pendMu.Lock()
	p := py.pending
	py.pending = nil
	py.npend.Store(0)
	py.pendMu.Unlock()
	for _, o := range p {
		call1(py.a.DecRef, uintptr(o))
	}
	if cap(p) <= 64 {
		py.pendMu.Lock()
		if py.pending == nil {
			py.pending = p[:0]
		}
		py.pendMu.Unlock()
	}
}

// gate is the lock of Threads slots taken before the GIL: a channel
// holding the free slots' numbers (a wait for it can be given up).
type gate struct {
	slots chan int
}

func (g *gate) init(n int) {
	g.slots = make(chan int, n)
	for i := 0; i < n; i++ {
		g.slots <- i
	}
}

func (g *gate) lock() int { return <-g.slots }

// lockOr waits for a slot unless a or b is closed first.
func (g *gate) lockOr(a, b <-chan struct{}) (int, bool) {
	select {
	case s := <-g.slots:
		return s, true
	default:
	}
	select {
	case s := <-g.slots:
		return s, true
	case <-a:
		return -1, false
	case <-b:
		return -1, false
	}
}

func (g *gate) unlock(slot int) { g.slots <- slot }
