// Package wsgiembed serves a WSGI application from CPython loaded into this
// process (package internal/cpython): the embedded worker mode.
//
// A worker process loads the app once and serves HTTP with net/http:
//
//	app, err := wsgiembed.Load(wsgiembed.Config{
//		Python: "/usr/bin/python3", App: "hello:application",
//		PythonPath: []string{"examples"},
//	})
//	if cpython.IsNoSharedLib(err) { /* run the process mode instead */ }
//	h := &wsgiembed.Handler{App: app, ErrorLog: log.Default()}
//	http.Serve(ln, h)
//
// The request goroutine calls the app itself, holding the GIL only for the
// call (see cpython.Interp.Enter): no socket hop, no other goroutine. The
// environ, the response checks and the errors are the process mode's (the
// Python side is python/hornbeam/_embed.py, which imports _worker's checks).
package wsgiembed

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hornbeam-go/hornbeam/internal/cpython"
	"github.com/hornbeam-go/hornbeam/python"
)

// Config says which app to load with which interpreter.
type Config struct {
	// Python is the interpreter whose libpython is embedded (a venv's
	// DIR/bin/python for a venv). Default "python3". Ignored when Install
	// is set.
	Python  string
	Install *cpython.Install // from cpython.Find, if already probed

	// App is "module:callable" (the callable defaults to application).
	App string
	// PythonPath entries go in front of sys.path, made absolute (the
	// process mode's --pythonpath).
	PythonPath []string
	// RuntimeDir holds the hornbeam Python package (python.FS unpacked);
	// empty: Load unpacks it into a temporary directory of its own.
	RuntimeDir string
	// Threads is how many requests may be inside Python at once (the
	// process mode's --threads; wsgi.multithread is Threads > 1).
	Threads int
	// Argv becomes sys.argv (default: this process's arguments).
	Argv []string
	// StateFD is this process's end of a state socket to the server (the
	// process mode's fd 4, see internal/wire "State socket"); VersionsFD
	// the shared change table (the process mode's fd 5). With them the
	// hornbeam.state_* calls of the app go to the server as from a worker
	// process; 0: none (an in-process store stands in).
	StateFD, VersionsFD int
	// Interface is "wsgi", "asgi" or "" (auto: an ASGI app is recognised
	// by its coroutine function). An ASGI app is served by package asgi,
	// not by Handler.
	Interface string
	// Prefix mounts a WSGI app under a path prefix (--mount): it sees the
	// prefix as SCRIPT_NAME, and 404 for other paths.
	Prefix string
	// ExtraSlots adds interpreter gate slots beyond Threads: one for an
	// ASGI event loop that shares the interpreter with WSGI apps.
	ExtraSlots int
}

// App is an application loaded in this process's interpreter.
type App struct {
	py         *cpython.Interp
	install    *cpython.Install
	spec       string
	runtimeDir string
	ownRuntime bool

	handle, step, stop, emitFn cpython.Object
	// asgi is the hornbeam._embed.ASGIApp of an ASGI application (then
	// handle is 0).
	asgi cpython.Object
	// cur is the request running in each gate slot, for emit.
	cur []*request

	// SignalHandlers names the signals for which the app installed a Python
	// handler while it was imported (signal.signal on the main thread). It
	// replaced this process's own handler for them and never runs: Python's
	// main thread runs no Python code after the import. The caller should
	// warn (or refuse) when it is not empty.
	SignalHandlers []string
}

// ImportError is Load's error when the application cannot be imported: the
// server should stop at start-up with it instead of retrying.
type ImportError struct {
	Spec   string
	Python string // the interpreter's sys.executable
	Err    error  // a *cpython.Error with the traceback
	Hint   string // for a ModuleNotFoundError
}

func (e *ImportError) Error() string {
	s := fmt.Sprintf("cannot import %s with %s:\n%v", e.Spec, e.Python, e.Err)
	if e.Hint != "" {
		s += "\nhint: " + e.Hint
	}
	return s
}

func (e *ImportError) Unwrap() error { return e.Err }

// Load starts the interpreter (once per process) and imports the app on
// Python's main thread, as a worker process does. An interpreter without a
// shared libpython gives an error for which cpython.IsNoSharedLib is true.
func Load(cfg Config) (*App, error) {
	inst := cfg.Install
	if inst == nil && !cpython.Hosted() {
		var err error
		if inst, err = cpython.Find(cfg.Python); err != nil {
			return nil, err
		}
	}
	if cfg.Threads < 1 {
		cfg.Threads = 1
	}
	a := &App{spec: cfg.App, runtimeDir: cfg.RuntimeDir, cur: make([]*request, cfg.Threads+cfg.ExtraSlots)}
	if a.runtimeDir == "" {
		dir, err := python.Unpack()
		if err != nil {
			return nil, err
		}
		a.runtimeDir, a.ownRuntime = dir, true
	}
	var path []string
	for _, p := range cfg.PythonPath {
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		path = append(path, p)
	}
	path = append(path, a.runtimeDir)
	py, err := cpython.Start(inst, cpython.Options{Argv: cfg.Argv, Path: path, Threads: cfg.Threads + cfg.ExtraSlots, Unbuffered: true})
	if err != nil {
		a.removeRuntime()
		return nil, err
	}
	a.py = py
	a.install = py.Install
	if err := a.importApp(cfg); err != nil {
		return nil, err
	}
	return a, nil
}

// LoadAnother imports one more app into a's interpreter (another
// --mount): cfg's App, Interface, Prefix and Threads count; the
// interpreter and the state socket are a's.
func (a *App) LoadAnother(cfg Config) (*App, error) {
	if cfg.Threads < 1 {
		cfg.Threads = 1
	}
	cfg.StateFD, cfg.VersionsFD = 0, 0 // set up once, by the first app
	b := &App{py: a.py, spec: cfg.App, runtimeDir: a.runtimeDir, install: a.install, cur: make([]*request, len(a.cur))}
	if err := b.importApp(cfg); err != nil {
		return nil, err
	}
	return b, nil
}

// importApp imports cfg.App on Python's main thread.
func (a *App) importApp(cfg Config) error {
	py, inst := a.py, a.install
	var loadErr error
	py.OnMain(func() { loadErr = a.load(cfg) })
	if loadErr != nil {
		var pe *cpython.Error
		if errors.As(loadErr, &pe) {
			ie := &ImportError{Spec: cfg.App, Python: inst.Executable, Err: loadErr}
			if pe.IsType("ModuleNotFoundError") {
				ie.Hint = fmt.Sprintf("is --python the interpreter that has your packages? Debian's is /usr/bin/python3 (this is %s, Python %s); add the app's directory with --pythonpath", inst.Executable, inst.Version)
			}
			return ie
		}
		return loadErr
	}
	return nil
}

// load imports hornbeam._embed and the app (main thread, GIL held).
func (a *App) load(cfg Config) error {
	py := a.py
	emit, err := py.NewFunction("hornbeam_emit", a.emit)
	if err != nil {
		return err
	}
	a.emitFn = emit
	mod, err := py.Import("hornbeam._embed")
	if err != nil {
		return fmt.Errorf("hornbeam's Python runtime (%s): %v", a.runtimeDir, err) // not an ImportError of the app
	}
	defer py.DecRef(mod)
	for _, f := range []struct {
		p    *cpython.Object
		name string
	}{{&a.step, "step"}, {&a.stop, "stop"}} {
		if *f.p, err = py.GetAttr(mod, f.name); err != nil {
			return err
		}
	}
	load, err := py.GetAttr(mod, "load")
	if err != nil {
		return err
	}
	defer py.DecRef(load)
	spec, err := py.NewStr(a.spec)
	if err != nil {
		return err
	}
	defer py.DecRef(spec)
	var ints [3]cpython.Object
	for i, v := range []int{cfg.Threads, cfg.StateFD, cfg.VersionsFD} {
		ints[i], _ = py.NewInt(int64(v))
		defer py.DecRef(ints[i])
	}
	iface := cfg.Interface
	if iface == "" {
		iface = "auto"
	}
	ifaceObj, err := py.NewStr(iface)
	if err != nil {
		return err
	}
	defer py.DecRef(ifaceObj)
	prefixObj, err := py.NewStr(strings.TrimRight(cfg.Prefix, "/"))
	if err != nil {
		return err
	}
	defer py.DecRef(prefixObj)
	app, err := py.Call(load, spec, emit, ints[0], ints[1], ints[2], ifaceObj, prefixObj)
	if err != nil {
		return err // the app's import error, with its traceback
	}
	defer py.DecRef(app)
	if kind, err := py.GetAttr(app, "kind"); err == nil {
		py.DecRef(kind)
		py.IncRef(app)
		a.asgi = app
	} else if a.handle, err = py.GetAttr(app, "handle"); err != nil {
		return err
	}
	if f, err := py.GetAttr(mod, "python_signal_handlers"); err == nil {
		if r, err := py.Call(f); err == nil {
			if names, err := py.GoString(r); err == nil && names != "" {
				a.SignalHandlers = strings.Split(names, ",")
			}
			py.DecRef(r)
		}
		py.DecRef(f)
	}
	py.Err() // a failure of that check is not the app's
	return nil
}

// Spec is the app's MODULE:CALLABLE.
func (a *App) Spec() string { return a.spec }

// ASGI returns the loaded ASGI application (a hornbeam._embed.ASGIApp,
// borrowed), or 0 for a WSGI one.
func (a *App) ASGI() cpython.Object { return a.asgi }

// Interp is the interpreter the app runs in.
func (a *App) Interp() *cpython.Interp { return a.py }

// Close finalises the interpreter (atexit handlers run) once the requests
// inside Python have left it; no request may be served after. For the end
// of a worker process.
func (a *App) Close() error {
	err := a.py.Close()
	a.removeRuntime()
	return err
}

func (a *App) removeRuntime() {
	if a.ownRuntime {
		os.RemoveAll(a.runtimeDir)
	}
}

// emit is hornbeam_emit(payload), which _embed calls for write() and
// wsgi.early_hints() while the app runs: b"W" + HEAD + CRLFCRLF + DATA or
// b"H" + HEADERS. It runs on the request's goroutine, with the GIL, which
// it releases while writing to the client. It must not panic: a panic
// would unwind through Python's C frames.
func (a *App) emit(arg cpython.Object) (ret cpython.Object) {
	py := a.py
	defer func() {
		if e := recover(); e != nil {
			py.SetError(false, fmt.Sprintf("hornbeam: %v", e))
			ret = 0
		}
	}()
	slot := py.CurrentSlot()
	var rq *request
	if slot >= 0 {
		rq = a.cur[slot]
	}
	if rq == nil {
		py.SetError(false, "write() and wsgi.early_hints() work only on the thread that runs the request")
		return 0
	}
	p, ok := py.Bytes(arg)
	if !ok || len(p) == 0 {
		py.SetError(false, "hornbeam_emit: bad payload")
		return 0
	}
	switch p[0] {
	case 'W':
		py.Unblock(func() { rq.write(p[1:]) })
	case 'H':
		py.Unblock(func() { rq.hints(p[1:]) })
	}
	py.IncRef(py.None())
	return py.None()
}

// Stacks returns the Python stack of every thread, for a request that does
// not return. It needs the GIL, which a thread running Python code releases
// every few milliseconds when asked; past wait it gives up (and leaves a
// goroutine waiting for the GIL).
func (a *App) Stacks(wait time.Duration) string {
	return a.Diagnose(stacksCode, wait)
}

// Diagnose runs Python code that sets result to a str (a report for the
// log) and returns it, taking the GIL as Stacks does: for code that
// inspects a process stuck in Python.
func (a *App) Diagnose(code string, wait time.Duration) string {
	done := make(chan string, 1)
	go func() {
		py := a.py
		py.EnterAlone()
		defer py.LeaveAlone()
		o, err := py.Run(code, nil)
		if err != nil {
			done <- "(no stacks: " + err.Error() + ")"
			return
		}
		s, err := py.GoString(o)
		py.DecRef(o)
		if err != nil {
			s = "(no stacks: " + err.Error() + ")"
		}
		done <- s
	}()
	select {
	case s := <-done:
		return s
	case <-time.After(wait):
		return fmt.Sprintf("(none: the GIL was not released within %s: a C call holds it)", wait)
	}
}

const stacksCode = `
import sys, threading, traceback
names = {t.ident: t.name for t in threading.enumerate()}
me = threading.get_ident()
out = []
for ident, frame in sys._current_frames().items():
    if ident == me:
        continue
    out.append("Thread %s (%#x):\n%s" % (names.get(ident, "?"), ident, "".join(traceback.format_stack(frame))))
result = "\n".join(out)
`
