package hornbeam_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hornbeam-go/hornbeam"
	"github.com/hornbeam-go/hornbeam/internal/testutil"
	"github.com/hornbeam-go/hornbeam/pool"
	"github.com/hornbeam-go/hornbeam/worker"
)

// TestMain lets this test binary serve as an embedded worker: the server
// starts os.Executable() with worker.EnvConfig set. With
// HORNBEAM_TEST_WORKER_MODE=hosted it first builds the worker library, and
// the suite's servers run embedded workers that are python3 hosting it.
func TestMain(m *testing.M) {
	if os.Getenv(worker.EnvConfig) != "" {
		os.Exit(hornbeam.WorkerMain())
	}
	if os.Getenv("HORNBEAM_TEST_WORKER_MODE") == "hosted" {
		dir, err := os.MkdirTemp("", "hornbeam-worker-")
		if err == nil {
			workerLibrary, err = testutil.BuildWorkerLibrary(dir, "./cmd/hornbeam-worker")
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		rc := m.Run()
		os.RemoveAll(dir)
		os.Exit(rc)
	}
	os.Exit(m.Run())
}

// workerLibrary is the worker library the embedded servers host
// (HORNBEAM_TEST_WORKER_MODE=hosted), or "": libpython is loaded.
var workerLibrary string

// startEmbedded starts app in the embedded worker mode.
func startEmbedded(t *testing.T, app string, opts hornbeam.Options) *testServer {
	t.Helper()
	opts.WorkerMode = hornbeam.ModeEmbedded
	return start(t, app, opts)
}

// TestEmbeddedServes: the app runs inside worker processes that are not
// this process, its state calls reach the server's store (atomic across
// workers), and the access log gets every request.
func TestEmbeddedServes(t *testing.T) {
	access := &syncBuffer{}
	s := startEmbedded(t, "core", hornbeam.Options{Workers: 2, AccessLog: access})
	pids := map[string]bool{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 25; j++ {
				code, body := get(t, s.URL+"/stream?key=embedded&delay=0")
				if code != 200 {
					t.Errorf("stream: %d", code)
				}
				_ = body
				code, pid := get(t, s.URL+"/pid")
				if code != 200 {
					t.Errorf("pid: %d", code)
				}
				mu.Lock()
				pids[pid] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if pids[strconv.Itoa(os.Getpid())] {
		t.Errorf("the app ran in the server process")
	}
	for pid := range pids {
		if n, _ := strconv.Atoi(pid); n == 0 {
			t.Errorf("bad pid %q", pid)
		}
	}
	// close() of each streamed response counted through the server's state.
	waitFor(t, 5*time.Second, "200 close() calls counted in the shared state", func() bool {
		v, _, _ := s.StateGet("closed:embedded")
		return v == int64(200)
	})
	waitFor(t, 5*time.Second, "400 access log lines", func() bool {
		return strings.Count(access.String(), "\n") == 400
	})
	if !strings.Contains(access.String(), `"GET /pid HTTP/1.1" 200`) {
		t.Errorf("access log: %.300s", access.String())
	}
	// The traffic stats get every request, from the workers' Load frames.
	code, _ := get(t, s.URL+"/pid")
	var st hornbeam.Stats
	defer func() {
		if t.Failed() {
			t.Logf("stats: requests %d, latency count %d, status %v, workers %+v", st.Requests, st.Latency.Count, st.Status, st.Workers)
		}
	}()
	waitFor(t, 5*time.Second, "/stats to count 401 requests", func() bool {
		st = s.Stats()
		served := uint64(0)
		for _, w := range st.Workers {
			served += w.Requests
		}
		return st.Requests == 401 && st.Latency.Count == 401 && served == 401
	})
	if code != 200 || st.Status["2xx"] != 401 {
		t.Errorf("status classes %v, want 401 2xx", st.Status)
	}
}

// TestEmbeddedRecycle: with --max-requests each worker asks to be replaced
// and is, with no request failing.
func TestEmbeddedRecycle(t *testing.T) {
	s := startEmbedded(t, "core", hornbeam.Options{Workers: 1, MaxRequests: 10})
	pids := map[string]bool{}
	for i := 0; i < 60; i++ {
		time.Sleep(30 * time.Millisecond) // a replacement takes some 100 ms to import the app
		resp, err := http.Get(s.URL + "/pid")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
		pids[string(b)] = true
	}
	if len(pids) < 3 {
		t.Errorf("60 requests with --max-requests 10 ran in %d worker(s)", len(pids))
	}
	contains(t, s.Log.String(), "(--max-requests)", "error log")
}

// TestEmbeddedTimeout: a request past --timeout gets 504 at once, its
// neighbour on the same worker finishes, the worker is replaced and the
// stuck thread's Python stack is logged.
func TestEmbeddedTimeout(t *testing.T) {
	s := startEmbedded(t, "core", hornbeam.Options{Workers: 1, Threads: 4, Timeout: 2 * time.Second})
	timeoutSparesNeighbour(t, s)
	log := s.Log.String()
	contains(t, log, "timed out after 2", "error log")
	if !regexp.MustCompile(`core\.py", line \d+,? in application`).MatchString(log) {
		t.Errorf("the error log lacks the stuck request's stack")
	}
}

// TestEmbeddedCrash: a worker that segfaults in the app cuts its
// connections; the master logs the signal and the Python traceback, and
// replaces it.
func TestEmbeddedCrash(t *testing.T) {
	s := startEmbedded(t, "core", hornbeam.Options{Workers: 1})
	crashLogged(t, s)
}

// TestEmbeddedImportError: an app that does not import stops Start with the
// traceback.
func TestEmbeddedImportError(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	logs := &syncBuffer{}
	_, err := hornbeam.Start(ctx, "no_such_module_xyz:app", hornbeam.Options{
		WorkerMode: hornbeam.ModeEmbedded, Python: python, Bind: []string{"127.0.0.1:0"}, Workers: 1, ErrorLog: logs,
	})
	if err == nil {
		t.Fatal("Start succeeded")
	}
	var se *pool.StartError
	if !errors.As(err, &se) || !strings.Contains(se.Output, "ModuleNotFoundError") {
		t.Errorf("error %v, output %q: want a StartError with the traceback", err, se)
	}
}

// TestEmbeddedStopReleasesFiles: a stopped embedded server holds none of
// the descriptors it opened (its listeners and the copies the workers
// inherit, the workers' sockets and pipes): a second start and stop leaves
// as many open as the first did.
func TestEmbeddedStopReleasesFiles(t *testing.T) {
	cycle := func() {
		s := startEmbedded(t, "core", hornbeam.Options{Workers: 2})
		if code, _ := get(t, s.URL+"/pid"); code != 200 {
			t.Fatalf("/pid: %d", code)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	}
	cycle() // what is opened once per process (the runtime, Python's lookup)
	before := openFDs(t)
	cycle()
	var after int
	defer func() {
		if t.Failed() {
			ents, _ := os.ReadDir("/proc/self/fd")
			for _, e := range ents {
				l, _ := os.Readlink("/proc/self/fd/" + e.Name())
				t.Logf("fd %s: %s", e.Name(), l)
			}
			t.Logf("%d descriptors before, %d after", before, after)
		}
	}()
	waitFor(t, 5*time.Second, "the descriptors to be released", func() bool {
		after = openFDs(t)
		return after <= before
	})
}

// TestEmbeddedConnectionsSpread: a burst of new keep-alive connections
// spreads over the workers (a worker that holds connections lets the
// others accept first), rather than all landing on whichever worker was
// awake.
func TestEmbeddedConnectionsSpread(t *testing.T) {
	s := startEmbedded(t, "core", hornbeam.Options{Workers: 4})
	// 8 clients connect at once and keep their connection for 5 requests:
	// the balance table (worker/balance.go) gives each of the 4 workers 2
	// of them. Which worker wins an accept is the scheduler's call, and a
	// worker defers to a less loaded one for at most 50 ms, so on a loaded
	// machine one round may come out uneven; more may not.
	even := 0
	var rounds []map[string]int
	for round := 0; round < 5; round++ {
		var mu sync.Mutex
		pids := map[string]int{}
		var wg, connected sync.WaitGroup
		connected.Add(8)
		for c := 0; c < 8; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tr := &http.Transport{}
				defer tr.CloseIdleConnections()
				client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
				for i := 0; i < 5; i++ {
					resp, err := client.Get(s.URL + "/pid")
					if i == 0 {
						connected.Done()
						connected.Wait() // every connection is open before any closes
					}
					if err != nil {
						t.Errorf("GET /pid: %v", err)
						return
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					mu.Lock()
					pids[string(b)]++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		rounds = append(rounds, pids)
		most := 0
		for _, n := range pids {
			most = max(most, n)
		}
		if len(pids) == 4 && most <= 15 { // each worker 1 to 3 of the 8 connections
			even++
		}
	}
	if even < 4 {
		t.Errorf("8 connections over 4 workers: even in %d of 5 rounds, want 4 (requests per worker pid: %v)", even, rounds)
	}
}

// hostedLibrary builds the worker library once for the tests that need it
// (TestMain has already when HORNBEAM_TEST_WORKER_MODE=hosted).
var hostedLibrary = sync.OnceValues(func() (string, error) {
	if workerLibrary != "" {
		return workerLibrary, nil
	}
	dir, err := os.MkdirTemp("", "hornbeam-worker-")
	if err != nil {
		return "", err
	}
	return testutil.BuildWorkerLibrary(dir, "./cmd/hornbeam-worker")
})

// TestHostedWorker: with the worker library, each embedded worker is the
// python3 executable itself, running the app on its own interpreter (no
// shared libpython mapped), with the app imported on its main thread, and
// the start-up line says so.
func TestHostedWorker(t *testing.T) {
	lib, err := hostedLibrary()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, library string
		hosted        bool
	}{
		{"hosted", lib, true},
		{"libpython", "-", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startEmbedded(t, "core", hornbeam.Options{Workers: 1, WorkerLibrary: tc.library})
			code, body := get(t, s.URL+"/interp")
			if code != 200 {
				t.Fatalf("/interp: %d %s", code, body)
			}
			var got struct {
				Executable, Exe string
				Libpython       []string
				Imported        bool `json:"imported_on_main_thread"`
			}
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("/interp: %v: %s", err, body)
			}
			exe, _ := filepath.EvalSymlinks(python)
			if got.Executable != python && got.Executable != exe {
				t.Errorf("sys.executable %q, want %s", got.Executable, python)
			}
			if !got.Imported {
				t.Errorf("the app's module-level code did not run on Python's main thread")
			}
			if tc.hosted {
				if got.Exe != exe || len(got.Libpython) != 0 {
					t.Errorf("worker is %s with %v mapped; want %s and no shared libpython", got.Exe, got.Libpython, exe)
				}
				if want := "embedded mode: " + python + " hosts " + lib; s.Server.Mode() != want {
					t.Errorf("Mode() = %q, want %q", s.Server.Mode(), want)
				}
			} else if len(got.Libpython) == 0 || !strings.HasPrefix(s.Server.Mode(), "embedded mode: /") || !strings.HasSuffix(s.Server.Mode(), " loaded") {
				t.Errorf("libpython route: %v mapped, Mode() %q", got.Libpython, s.Server.Mode())
			}
		})
	}
}

// TestWorkerLibraryMissing: a worker library that is not there stops Start
// with a message saying how to build it.
func TestWorkerLibraryMissing(t *testing.T) {
	_, err := hornbeam.Start(t.Context(), "core", hornbeam.Options{
		WorkerMode: hornbeam.ModeEmbedded, WorkerLibrary: filepath.Join(t.TempDir(), "nope.so"),
		Python: python, Bind: []string{"127.0.0.1:0"}, Workers: 1, PythonPath: []string{appsDir(t)}, ErrorLog: io.Discard,
	})
	if err == nil || !strings.Contains(err.Error(), "go build -buildmode=c-shared") {
		t.Fatalf("Start with a missing worker library: %v; want how to build it", err)
	}
}

// TestHostedChosenByDefault: with the worker library and no worker mode
// given, the server runs hosted embedded workers.
func TestHostedChosenByDefault(t *testing.T) {
	lib, err := hostedLibrary()
	if err != nil {
		t.Fatal(err)
	}
	s := start(t, "core", hornbeam.Options{Workers: 1, WorkerLibrary: lib})
	if want := "embedded mode: " + python + " hosts " + lib; s.Server.Mode() != want {
		t.Errorf("Mode() = %q, want %q", s.Server.Mode(), want)
	}
	if code, body := get(t, s.URL+"/interp"); code != 200 || !strings.Contains(body, `"libpython": []`) {
		t.Errorf("/interp: %d %s", code, body)
	}
}

// TestHostedWorkerUser: -u/-g with hosted embedded workers: each worker
// (a python3 hosting the library) switches to the user before it loads
// the library and imports the app, with and without --preload (then the
// zygote keeps root, as gunicorn's master does).
func TestHostedWorkerUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching the workers' user needs root")
	}
	lib, err := hostedLibrary()
	if err != nil {
		t.Fatal(err)
	}
	// The user must be able to read the library and the app.
	for d := filepath.Dir(lib); d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	os.Chmod(lib, 0o755)
	for _, preload := range []bool{false, true} {
		t.Run(fmt.Sprintf("preload=%v", preload), func(t *testing.T) {
			s := startEmbedded(t, "core", hornbeam.Options{Workers: 1, WorkerLibrary: lib, Preload: preload,
				WorkerUser: &hornbeam.WorkerUser{UID: 65534, GID: 65534, Groups: []int{65534}}})
			code, pid := get(t, s.URL+"/pid")
			if code != 200 {
				t.Fatalf("/pid: %d %s", code, pid)
			}
			status, err := os.ReadFile("/proc/" + pid + "/status")
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"Uid:\t65534\t65534\t65534\t65534", "Gid:\t65534\t65534\t65534\t65534", "Groups:\t65534"} {
				if !strings.Contains(string(status), want) {
					t.Errorf("worker %s: want %q in its status:\n%s", pid, want, status)
				}
			}
		})
	}
}

// TestHostedInterpreters: hosted workers run on every CPython 3.8+ found
// here (pyenv's builds, when there are some), WSGI and ASGI.
func TestHostedInterpreters(t *testing.T) {
	lib, err := hostedLibrary()
	if err != nil {
		t.Fatal(err)
	}
	found, _ := filepath.Glob(filepath.Join(os.Getenv("HOME"), ".pyenv/versions/3.*/bin/python3"))
	var pythons []string
	for _, p := range found {
		var minor int
		if _, err := fmt.Sscanf(filepath.Base(filepath.Dir(filepath.Dir(p))), "3.%d", &minor); err == nil && minor >= 8 {
			pythons = append(pythons, p)
		}
	}
	if len(pythons) == 0 {
		t.Skip("no other CPython 3.8+ here (pyenv)")
	}
	for _, py := range pythons {
		t.Run(filepath.Base(filepath.Dir(filepath.Dir(py))), func(t *testing.T) {
			s := startEmbedded(t, "core", hornbeam.Options{Workers: 1, WorkerLibrary: lib, Python: py})
			if code, body := get(t, s.URL+"/interp"); code != 200 || !strings.Contains(body, `"executable": "`+py) {
				t.Errorf("/interp: %d %s", code, body)
			}
			a := startEmbedded(t, "asgi_min:app", hornbeam.Options{Workers: 1, WorkerLibrary: lib, Python: py, Interface: "asgi"})
			if code, body := get(t, a.URL+"/x"); code != 200 || body != "/x" {
				t.Errorf("ASGI: %d %s", code, body)
			}
		})
	}
}

// TestEmbeddedNoSharedLibHint: an interpreter without a shared libpython
// cannot be loaded; the error says what to install and that the worker
// library needs none.
func TestEmbeddedNoSharedLibHint(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "python3")
	os.WriteFile(fake, []byte(`#!/bin/sh
echo '{"executable": "/opt/py/bin/python3", "version": "3.11.9", "major": 3, "minor": 11, "prefix": "/opt/py", "base_prefix": "/opt/py", "shared": 0, "libdir": "/nonexistent/lib", "ldlibrary": "libpython3.11.a", "instsoname": "", "multiarch": "", "libpl": "", "abiflags": "", "gil": null}'
`), 0o755)
	_, err := hornbeam.Start(t.Context(), "core", hornbeam.Options{
		WorkerMode: hornbeam.ModeEmbedded, WorkerLibrary: "-", Python: fake,
		Bind: []string{"127.0.0.1:0"}, Workers: 1, PythonPath: []string{appsDir(t)}, ErrorLog: io.Discard,
	})
	if err == nil {
		t.Fatal("Start with an interpreter without a shared libpython: no error")
	}
	for _, want := range []string{"has no shared libpython", "--enable-shared", "go build -buildmode=c-shared", "hornbeam-worker.so"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}
