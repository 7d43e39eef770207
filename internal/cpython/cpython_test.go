package cpython

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/hornbeam-go/hornbeam/pymarshal"
	"os"
	"strings"
	"sync"
	"testing"
)

// debianPython is the interpreter the tests embed: Debian's, whose shared
// library comes with the libpython3.11 package.
const debianPython = "/usr/bin/python3"

var (
	testOnce sync.Once
	testPy   *Interp
	testErr  error
)

// interp starts the test process's interpreter once (CPython cannot be
// initialised twice), or skips when Debian's libpython is not installed.
func interp(t testing.TB) *Interp {
	t.Helper()
	testOnce.Do(func() {
		var inst *Install
		inst, testErr = Find(debianPython)
		if testErr != nil {
			return
		}
		testPy, testErr = Start(inst, Options{Argv: []string{"hornbeam-test", "x"}, Path: []string{"/nonexistent-first"}, Unbuffered: true})
	})
	if testErr != nil {
		if IsNoSharedLib(testErr) || os.IsNotExist(testErr) {
			t.Skipf("no libpython to embed (apt-get install libpython3.11): %v", testErr)
		}
		t.Fatal(testErr)
	}
	return testPy
}

func run(t testing.TB, py *Interp, src string, vars map[string]any) any {
	t.Helper()
	slot := py.Enter()
	defer py.Leave(slot)
	o, err := py.Run(src, vars)
	if err != nil {
		t.Fatalf("%v", err)
	}
	defer py.DecRef(o)
	v, err := py.ToGo(o)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestStart(t *testing.T) {
	py := interp(t)
	v := run(t, py, "import sys\nresult = (sys.executable, sys.argv, sys.path[0], sys.version, sys.flags.ignore_environment)", nil).(pymarshalTuple)
	t.Logf("%v", v)
	// sys.executable is the interpreter, never this binary: multiprocessing's
	// spawn would start the server again.
	if v[0] != debianPython || fmt.Sprint(v[1]) != "[hornbeam-test x]" || v[2] != "/nonexistent-first" || !strings.HasPrefix(v[3].(string), "3.11") {
		t.Errorf("sys: %v", v)
	}
	if !strings.Contains(py.Install.Library, "libpython3") {
		t.Errorf("library %q", py.Install.Library)
	}
}

func TestCExtensionsAndSignals(t *testing.T) {
	py := interp(t)
	// C extension modules resolve Py* symbols against the library loaded
	// with RTLD_GLOBAL; Python installed no signal handler of its own.
	v := run(t, py, `
import _decimal, _json, _ctypes, _sqlite3, signal, threading
result = (str(_decimal.Decimal("1.10") + 1), signal.getsignal(signal.SIGINT) in (signal.SIG_DFL, None),
          threading.current_thread() is threading.main_thread())
`, nil)
	got := v.(pymarshalTuple)
	if got[0] != "2.10" || got[1] != true {
		t.Errorf("got %v", got)
	}
	if got[2] != false {
		t.Error("a request goroutine's thread must not be Python's main thread")
	}
	// signal.signal from a request's thread raises (it is not the main
	// thread): an app cannot replace Go's handlers from a request.
	slot := py.Enter()
	_, err := py.Run("import signal\nsignal.signal(signal.SIGTERM, lambda *a: None)", nil)
	py.Leave(slot)
	if err == nil || !strings.Contains(err.Error(), "main thread") {
		t.Errorf("signal.signal from a request thread: %v", err)
	}
}

func TestErrorWithTraceback(t *testing.T) {
	py := interp(t)
	slot := py.Enter()
	defer py.Leave(slot)
	_, err := py.Run("def f():\n    raise ValueError('bad value')\nf()", nil)
	e, ok := err.(*Error)
	if !ok {
		t.Fatalf("%T %v", err, err)
	}
	if e.Type != "ValueError" || e.Message != "bad value" || e.Summary() != "ValueError: bad value" {
		t.Errorf("%#v", e)
	}
	for _, s := range []string{"Traceback (most recent call last)", ", line 2, in f", "ValueError: bad value"} {
		if !strings.Contains(e.Error(), s) {
			t.Errorf("traceback lacks %q:\n%s", s, e.Error())
		}
	}
	if py.Err() != nil {
		t.Error("the exception was not cleared")
	}
	// SystemExit and KeyboardInterrupt are plain errors: no PyErr_Print,
	// no finalisation; the interpreter goes on.
	for _, src := range []string{"import sys; sys.exit(3)", "raise KeyboardInterrupt"} {
		_, err := py.Run(src, nil)
		if err == nil {
			t.Fatalf("%s: no error", src)
		}
		t.Logf("%s -> %s", src, err.(*Error).Summary())
	}
	_, err = py.Import("no_such_module_hb")
	if e, ok := err.(*Error); !ok || !e.IsType("ModuleNotFoundError") {
		t.Errorf("import: %v", err)
	}
	if v, err := py.Run("result = 1 + 1", nil); err != nil {
		t.Fatal(err)
	} else {
		py.DecRef(v)
	}
}

// TestConcurrentCallers calls Python from 64 goroutines at once: every
// result must be right, and the callers' OS threads each keep one thread
// state.
func TestConcurrentCallers(t *testing.T) {
	py := interp(t)
	slot := py.Enter()
	fn, err := py.Run(`
import threading
seen = set()
def f(x):
    seen.add(threading.get_ident())
    s = 0
    for i in range(x):
        s += i
    return s
result = f
`, nil)
	py.Leave(slot)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 64; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				n := int64(g*7 + i%13)
				slot := py.Enter()
				arg, _ := py.NewInt(n)
				r, err := py.CallOneArg(fn, arg)
				py.DecRef(arg)
				var got int64
				if err == nil {
					got, err = py.Int(r)
					py.DecRef(r)
				}
				py.Leave(slot)
				if err != nil || got != n*(n-1)/2 {
					errs <- fmt.Errorf("f(%d) = %d, %v", n, got, err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	slot = py.Enter()
	py.DecRef(fn)
	py.Leave(slot)
}

// TestNoLeak runs 100k calls and checks that Python's allocated blocks and
// gc-tracked objects stay flat.
func TestNoLeak(t *testing.T) {
	py := interp(t)
	counts := func() (int64, int64) {
		v := run(t, py, "import sys, gc\ngc.collect()\nresult = (sys.getallocatedblocks(), len(gc.get_objects()))", nil).(pymarshalTuple)
		return v[0].(int64), v[1].(int64)
	}
	slot := py.Enter()
	fn, err := py.Run("def f(b):\n    return {'n': len(b), 'l': [b, b'x']}\nresult = f", nil)
	py.Leave(slot)
	if err != nil {
		t.Fatal(err)
	}
	round := func(n int) {
		for i := 0; i < n; i++ {
			slot := py.Enter()
			arg, _ := py.NewBytes([]byte("some request data"))
			r, err := py.CallOneArg(fn, arg)
			if err != nil {
				t.Fatal(err)
			}
			py.DecRef(arg)
			if i%2 == 0 {
				py.DecRef(r)
			} else {
				py.DecRefLater(r)
			}
			py.Leave(slot)
		}
	}
	round(1000)
	b0, o0 := counts()
	round(100000)
	b1, o1 := counts()
	t.Logf("allocated blocks %d -> %d, gc objects %d -> %d", b0, b1, o0, o1)
	if b1-b0 > 200 || o1-o0 > 50 {
		t.Errorf("leak: allocated blocks %d -> %d, gc objects %d -> %d over 100k calls", b0, b1, o0, o1)
	}
}

func TestNoSharedLibError(t *testing.T) {
	dir := t.TempDir()
	fake := dir + "/python3"
	os.WriteFile(fake, []byte(`#!/bin/sh
echo '{"executable": "/opt/py/bin/python3", "version": "3.11.9", "major": 3, "minor": 11, "prefix": "/usr", "base_prefix": "/usr", "shared": 1, "libdir": "/nonexistent/lib", "ldlibrary": "libpython3.11.so", "instsoname": "libpython3.11.so.1.0", "multiarch": "x86_64-linux-gnu", "libpl": "", "abiflags": "", "gil": null}'
`), 0o755)
	_, err := Find(fake)
	if !IsNoSharedLib(err) {
		t.Fatalf("%v", err)
	}
	msg := err.Error()
	for _, s := range []string{"no shared libpython", "/nonexistent/lib/libpython3.11.so.1.0"} {
		if !strings.Contains(msg, s) {
			t.Errorf("%q lacks %q", msg, s)
		}
	}
	if _, err := os.Stat("/etc/debian_version"); err == nil && !strings.Contains(msg, "apt-get install libpython3.11") {
		t.Errorf("no install hint: %s", msg)
	}
	t.Log(msg)
	if _, err := Find(dir + "/missing"); err == nil || IsNoSharedLib(err) {
		t.Errorf("missing interpreter: %v", err)
	}
}

type pymarshalTuple = pymarshal.Tuple

func BenchmarkEnterLeave(b *testing.B) {
	py := interp(b)
	for i := 0; i < b.N; i++ {
		slot := py.Enter()
		py.Leave(slot)
	}
}

// BenchmarkCall is one Enter, call of a Python function, DecRef, Leave.
func BenchmarkCall(b *testing.B) {
	py := interp(b)
	slot := py.Enter()
	fn, err := py.Run("def f(x):\n    return x\nresult = f", nil)
	py.Leave(slot)
	if err != nil {
		b.Fatal(err)
	}
	none := py.None()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		slot := py.Enter()
		r, _ := py.CallOneArg(fn, none)
		py.DecRef(r)
		py.Leave(slot)
	}
}

// BenchmarkCAPICall is the cost of one C-API call through purego.
func BenchmarkCAPICall(b *testing.B) {
	py := interp(b)
	slot := py.Enter()
	defer py.Leave(slot)
	none := py.None()
	for i := 0; i < b.N; i++ {
		py.IncRef(none)
	}
	for i := 0; i < b.N; i++ {
		py.DecRef(none)
	}
}

// child runs this test binary again with HB_CPYTHON_CHILD=scenario: a
// process of its own for what needs a fresh interpreter.
func child(t *testing.T, scenario string, args ...string) string {
	t.Helper()
	if _, err := os.Stat("/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0"); err != nil {
		interp(t) // skips, with the reason, when libpython is missing
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestChild$", "-test.v")
	cmd.Env = append(os.Environ(), "HB_CPYTHON_CHILD="+scenario, "HB_CPYTHON_ARGS="+strings.Join(args, "\x00"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child %s: %v\n%s", scenario, err, out)
	}
	return string(out)
}

// TestChild is the child's side of child(); it does nothing in a normal run.
func TestChild(t *testing.T) {
	scenario := os.Getenv("HB_CPYTHON_CHILD")
	if scenario == "" {
		t.Skip("runs only as a child process of the other tests")
	}
	args := strings.Split(os.Getenv("HB_CPYTHON_ARGS"), "\x00")
	switch scenario {
	case "venv":
		inst, err := Find(args[0])
		if err != nil {
			t.Fatal(err)
		}
		py, err := Start(inst, Options{})
		if err != nil {
			t.Fatal(err)
		}
		v := run(t, py, `
import json, sys, flask, hb_venv_only
result = json.dumps({"executable": sys.executable, "prefix": sys.prefix, "base_prefix": sys.base_prefix,
                     "venv_module": hb_venv_only.__file__, "flask": flask.__file__})
`, nil)
		fmt.Printf("RESULT %s\n", v)
	case "threads":
		inst, err := Find(debianPython)
		if err != nil {
			t.Fatal(err)
		}
		py, err := Start(inst, Options{Threads: 4})
		if err != nil {
			t.Fatal(err)
		}
		slot := py.Enter()
		fn, err := py.Run("import time\nresult = time.sleep", nil)
		arg, _ := py.FromGo(0.3)
		py.Leave(slot)
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		var wg sync.WaitGroup
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				slot := py.Enter()
				r, err := py.CallOneArg(fn, arg)
				if err != nil {
					t.Error(err)
				}
				py.DecRef(r)
				py.Leave(slot)
			}()
		}
		wg.Wait()
		fmt.Printf("RESULT %.3f\n", time.Since(t0).Seconds())
	case "close":
		inst, err := Find(debianPython)
		if err != nil {
			t.Fatal(err)
		}
		py, err := Start(inst, Options{})
		if err != nil {
			t.Fatal(err)
		}
		py.OnMain(func() {
			o, err := py.Run("import atexit, sys\natexit.register(lambda: print('atexit ran', flush=True))", nil)
			if err != nil {
				t.Error(err)
			}
			py.DecRef(o)
		})
		if err := py.Close(); err != nil {
			t.Fatal(err)
		}
		if err := py.OnMain(func() {}); err != ErrClosed {
			t.Errorf("OnMain after Close: %v", err)
		}
		fmt.Println("RESULT closed")
	}
}

func result(t *testing.T, out string) string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if r, ok := strings.CutPrefix(line, "RESULT "); ok {
			return r
		}
	}
	t.Fatalf("no RESULT in:\n%s", out)
	return ""
}

// TestVenv embeds a venv's interpreter (DIR/bin/python, a symlink to
// Debian's): the venv's own packages and, with --system-site-packages,
// Debian's are importable, and sys.executable is the venv's python.
func TestVenv(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "venv")
	if out, err := exec.Command(debianPython, "-m", "venv", "--without-pip", "--system-site-packages", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot make a venv (python3-venv missing?): %v %s", err, out)
	}
	site, _ := filepath.Glob(filepath.Join(dir, "lib", "python3*", "site-packages"))
	if len(site) != 1 {
		t.Fatalf("site-packages: %v", site)
	}
	os.WriteFile(filepath.Join(site[0], "hb_venv_only.py"), []byte("X = 1\n"), 0o644)
	var got map[string]string
	if err := json.Unmarshal([]byte(result(t, child(t, "venv", filepath.Join(dir, "bin", "python")))), &got); err != nil {
		t.Fatal(err)
	}
	t.Logf("%v", got)
	if got["executable"] != filepath.Join(dir, "bin", "python") || got["prefix"] != dir || got["base_prefix"] != "/usr" {
		t.Errorf("venv interpreter: %v", got)
	}
	if !strings.HasPrefix(got["venv_module"], site[0]) || !strings.HasPrefix(got["flask"], "/usr/lib/python3/dist-packages/") {
		t.Errorf("imports: %v", got)
	}
}

// TestThreads: with Threads 4, four calls that release the GIL run at once.
func TestThreads(t *testing.T) {
	var secs float64
	fmt.Sscan(result(t, child(t, "threads")), &secs)
	if secs > 0.9 {
		t.Errorf("4 sleeps of 0.3 s with 4 threads took %.2f s", secs)
	}
}

// TestClose finalises: atexit handlers run, later calls get ErrClosed.
func TestClose(t *testing.T) {
	out := child(t, "close")
	if !strings.Contains(out, "atexit ran") || result(t, out) != "closed" {
		t.Errorf("%s", out)
	}
}

// TestNewFunction calls Go from Python: the Go function runs on the caller's
// goroutine with its slot, and may release the GIL meanwhile.
func TestNewFunction(t *testing.T) {
	py := interp(t)
	var slots []int
	slot := py.Enter()
	fn, err := py.NewFunction("gofn", func(arg Object) Object {
		slots = append(slots, py.CurrentSlot())
		b, ok := py.Bytes(arg)
		if !ok {
			py.SetError(false, "gofn wants bytes")
			return 0
		}
		s := string(b)
		py.Unblock(func() { s = strings.ToUpper(s) })
		r, _ := py.NewBytes([]byte(s))
		return r
	})
	if err != nil {
		t.Fatal(err)
	}
	g, _ := py.NewDict()
	py.SetItem(g, "gofn", fn)
	f, err := py.Run("def f(gofn):\n    return gofn(b'abc') + gofn(b'd')\nresult = f", nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := py.CallOneArg(f, fn)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := py.ToGo(r)
	py.DecRef(r)
	if string(v.([]byte)) != "ABCD" || fmt.Sprint(slots) != "[0 0]" {
		t.Errorf("got %q, slots %v", v, slots)
	}
	_, err = py.CallOneArg(fn, py.None())
	if err == nil || !strings.Contains(err.Error(), "RuntimeError: gofn wants bytes") {
		t.Errorf("error from Go: %v", err)
	}
	py.DecRef(f)
	py.DecRef(g)
	py.DecRef(fn)
	py.Leave(slot)
}

// BenchmarkUnblock is releasing and taking back the GIL, the slot kept.
func BenchmarkUnblock(b *testing.B) {
	py := interp(b)
	slot := py.Enter()
	defer py.Leave(slot)
	for i := 0; i < b.N; i++ {
		py.Unblock(func() {})
	}
}
