package hornbeam_test

import (
	"context"
	"github.com/hornbeam-go/hornbeam/internal/testutil"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hornbeam-go/hornbeam"
)

// python is the interpreter tests run apps with: Debian's, which sees the
// python3-* packages (a pyenv python3 on PATH does not).
const python = "/usr/bin/python3"

// syncBuffer is safe for the server's concurrent writes.
type syncBuffer = testutil.SyncBuffer

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testServer is a running server on a loopback port.
type testServer struct {
	*hornbeam.Server
	URL     string
	Log     *syncBuffer
	Mode    string // the worker mode: hornbeam.ModeEmbedded, or "" / ModeProcess
	Preload bool
}

// Embedded reports whether s runs embedded workers (which serve their
// connections themselves: a worker that dies cuts them, no 502 is sent).
func (s *testServer) Embedded() bool { return s.Mode == hornbeam.ModeEmbedded }

// Hosted says the embedded workers are python3 hosting the worker library.
func (s *testServer) Hosted() bool { return strings.Contains(s.Server.Mode(), " hosts ") }

// getOnce fetches url on a connection of its own, never retried (Go's
// client retries a GET whose reused connection was cut, which would send
// a request that kills its worker to the replacement as well). It returns
// the status, or the error when the connection was cut.
func getOnce(url string) (int, error) {
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.ReadAll(resp.Body); err != nil {
		return resp.StatusCode, err
	}
	return resp.StatusCode, nil
}

// wantDeathAnswer checks how a request whose worker died under it ended:
// 502 in the process mode; in the embedded mode the connection is cut
// (the worker held it), with no answer at all.
func wantDeathAnswer(t *testing.T, s *testServer, what string, code int, err error) {
	t.Helper()
	if s.Embedded() {
		if err == nil {
			t.Errorf("%s: answered %d; in the embedded mode the worker's death cuts the connection", what, code)
		}
		return
	}
	if err != nil || code != 502 {
		t.Errorf("%s: %d %v, want 502", what, code, err)
	}
}

// appsDir is testdata/apps, holding the test applications.
func appsDir(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "testdata", "apps")
}

// start runs app from testdata/apps with opts (Bind, Python and the
// pythonpath filled in when empty) and stops it when the test ends.
func start(t *testing.T, app string, opts hornbeam.Options) *testServer {
	t.Helper()
	if _, err := os.Stat(python); err != nil {
		t.Skip("Debian's /usr/bin/python3 is not installed")
	}
	logs := &syncBuffer{}
	if opts.ErrorLog == nil {
		opts.ErrorLog = logs
	}
	if len(opts.Bind) == 0 && len(opts.Listeners) == 0 {
		opts.Bind = []string{"127.0.0.1:0"}
	}
	if opts.Python == "" {
		opts.Python = python
	}
	if len(opts.PythonPath) == 0 {
		opts.PythonPath = []string{appsDir(t)}
	}
	if opts.Workers == 0 {
		opts.Workers = 2
	}
	if opts.WorkerMode == "" {
		// HORNBEAM_TEST_WORKER_MODE=embedded runs the suite's servers in
		// the embedded mode; =hosted too, with python3 hosting the worker
		// library.
		opts.WorkerMode = os.Getenv("HORNBEAM_TEST_WORKER_MODE")
		if opts.WorkerMode == "hosted" {
			opts.WorkerMode = hornbeam.ModeEmbedded
		}
	}
	if opts.WorkerMode == hornbeam.ModeEmbedded && opts.WorkerLibrary == "" && workerLibrary != "" {
		opts.WorkerLibrary = workerLibrary
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv, err := hornbeam.Start(ctx, app, opts)
	if err != nil {
		t.Fatalf("starting %s: %v\nlog:\n%s", app, err, logs.String())
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Stop(ctx)
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	scheme := "http"
	if opts.CertFile != "" {
		scheme = "https"
	}
	return &testServer{Server: srv, URL: scheme + "://" + srv.Addrs()[0].String(), Log: logs, Mode: opts.WorkerMode, Preload: opts.Preload}
}

// get fetches url and returns the status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

func contains(t *testing.T, haystack, needle, what string) {
	t.Helper()
	if !strings.Contains(haystack, needle) {
		t.Errorf("%s: want it to contain %q; got:\n%s", what, needle, haystack)
	}
}

// waitForReplacement waits until /pid answers from a worker other than
// old (the one that died, timed out or was recycled).
func waitForReplacement(t *testing.T, s *testServer, old string) {
	t.Helper()
	waitFor(t, 10*time.Second, "a replacement for worker "+old, func() bool {
		resp, err := http.Get(s.URL + "/pid")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == 200 && string(b) != old
	})
}
