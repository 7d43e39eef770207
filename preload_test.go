package hornbeam_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hornbeam-go/hornbeam"
)

// pids returns (the pid that imported the app, the pid that served).
func pids(t *testing.T, url string) (string, string) {
	t.Helper()
	_, body := get(t, url)
	f := strings.Fields(body)
	if len(f) != 2 {
		t.Fatalf("unexpected body %q", body)
	}
	return f[0], f[1]
}

func TestPreload(t *testing.T) {
	s := start(t, "preload", hornbeam.Options{Workers: 2, Preload: true})
	if s.Embedded() && !s.Hosted() {
		preloadEmbedded(t, s)
		return
	}
	// The process mode, and hosted embedded workers (their zygote is the
	// python3 that imported the app, and each fork loads the library).
	importer, _ := pids(t, s.URL+"/")
	// Every worker is a child of the process that imported the app.
	workers := s.Stats().Workers
	if len(workers) != 2 {
		t.Fatalf("%d workers", len(workers))
	}
	for _, w := range workers {
		if pp := ppid(t, w.PID); pp != importer {
			t.Errorf("worker %d has parent %s, want the zygote %s that imported the app", w.PID, pp, importer)
		}
	}

	// A worker that dies is forked again from the same zygote, and its exit
	// status (reported by the zygote) is logged.
	code, err := getOnce(s.URL + "/die")
	wantDeathAnswer(t, s, "a dying worker", code, err)
	waitFor(t, 10*time.Second, "the death to be logged", func() bool {
		return strings.Contains(s.Log.String(), "SIGKILL")
	})
	waitFor(t, 10*time.Second, "two workers again", func() bool { return s.Pool().Workers() == 2 })
	imp, _ := pids(t, s.URL+"/")
	if imp != importer {
		t.Errorf("after a restart the app was imported by %s, want the zygote %s", imp, importer)
	}
}

// preloadEmbedded: the embedded mode with libpython loaded cannot preload
// (a worker is a Go process, which cannot fork once its runtime runs): the
// server says so,
// every worker is the server's child and imports the app itself, a
// replacement too.
func preloadEmbedded(t *testing.T, s *testServer) {
	contains(t, s.Log.String(), "[WARNING] --preload does nothing in the embedded worker mode", "error log")
	workers := s.Stats().Workers
	if len(workers) != 2 {
		t.Fatalf("%d workers", len(workers))
	}
	me := fmt.Sprint(os.Getpid())
	for _, w := range workers {
		if pp := ppid(t, w.PID); pp != me {
			t.Errorf("worker %d has parent %s, want the server %s", w.PID, pp, me)
		}
	}
	seen := map[string]bool{}
	for i := 0; i < 20 && len(seen) < 2; i++ {
		importer, server := pids(t, s.URL+"/")
		if importer != server {
			t.Fatalf("worker %s serves an app imported by %s, want by itself", server, importer)
		}
		seen[server] = true
	}
	before := map[int]bool{workers[0].PID: true, workers[1].PID: true}
	code, err := getOnce(s.URL + "/die")
	wantDeathAnswer(t, s, "a dying worker", code, err)
	waitFor(t, 10*time.Second, "two workers again, one of them new", func() bool {
		ws := s.Stats().Workers
		return len(ws) == 2 && before[ws[0].PID] != before[ws[1].PID]
	})
	contains(t, s.Log.String(), "was killed by signal 9 (SIGKILL", "error log")
	for i := 0; i < 10; i++ {
		if importer, server := pids(t, s.URL+"/"); importer != server {
			t.Errorf("after a restart worker %s serves an app imported by %s, want by itself", server, importer)
		}
	}
}

func TestPreloadCrashLogged(t *testing.T) {
	s := start(t, "preload", hornbeam.Options{Workers: 1, Preload: true})
	resp, err := http.Get(s.URL + "/segv")
	if err == nil {
		io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 502 {
			t.Errorf("segfault gave %d, want 502", resp.StatusCode)
		}
	} else if !s.Embedded() {
		t.Errorf("segfault: %v, want 502", err)
	}
	waitFor(t, 10*time.Second, "the segfault to be logged", func() bool {
		l := s.Log.String()
		if s.Embedded() { // the worker held the request: the log cannot name it
			return strings.Contains(l, "was killed by signal 11 (SIGSEGV")
		}
		return strings.Contains(l, "SIGSEGV") && strings.Contains(l, "GET /segv")
	})
	contains(t, s.Log.String(), "Fatal Python error: Segmentation fault", "faulthandler's report")
	contains(t, s.Log.String(), `preload.py", line`, "the Python traceback of the crash")
}

func TestPreloadImportError(t *testing.T) {
	_, err := hornbeam.Start(t.Context(), "no_such_module_abc", hornbeam.Options{
		Bind: []string{"127.0.0.1:0"}, Workers: 2, Preload: true, Python: python,
		PythonPath: []string{appsDir(t)}, ErrorLog: io.Discard,
	})
	if err == nil || !strings.Contains(err.Error(), "No module named 'no_such_module_abc'") {
		t.Fatalf("want an import error naming the module, got %v", err)
	}
}

func ppid(t *testing.T, pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// pid (comm) state ppid ...
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return f[1]
}
