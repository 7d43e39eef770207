package top

import (
	"bytes"
	"context"
	"fmt"
	"github.com/hornbeam-go/hornbeam/internal/testutil"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hornbeam-go/hornbeam"
)

const python = "/usr/bin/python3"

// liveServer is a hornbeam server on testdata/app.py with two workers.
type liveServer struct {
	srv   *hornbeam.Server
	url   string // the app
	stats string // the stats address, as --stats-bind would name it
}

func startServer(t *testing.T, statsBind string) *liveServer {
	t.Helper()
	if _, err := os.Stat(python); err != nil {
		t.Skipf("no %s", python)
	}
	testdata, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := hornbeam.Start(ctx, "app:application", hornbeam.Options{
		Bind: []string{"127.0.0.1:0"}, StatsBind: statsBind, Workers: 2,
		Python: python, PythonPath: []string{testdata}, ErrorLog: io.Discard,
		GracefulTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Stop(ctx)
	})
	ls := &liveServer{srv: srv, url: "http://" + srv.Addrs()[0].String()}
	a := srv.StatsAddr()
	if a.Network() == "unix" {
		ls.stats = "unix:" + a.String()
	} else {
		ls.stats = a.String()
	}
	return ls
}

var client = &http.Client{Timeout: 20 * time.Second}

func (ls *liveServer) get(t *testing.T, path string) int {
	t.Helper()
	resp, err := client.Get(ls.url + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// holdWorker sends GET /sleep, which keeps one worker busy until the
// returned release function is called, and waits until the pool shows it.
func (ls *liveServer) holdWorker(t *testing.T) (release func()) {
	t.Helper()
	flag := filepath.Join(t.TempDir(), "release")
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := client.Get(ls.url + "/sleep?s=15&release=" + flag)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	release = func() {
		os.WriteFile(flag, nil, 0o644)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("GET /sleep did not end after its release")
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, w := range ls.srv.Stats().Workers {
			if w.State == "busy" && w.Current == "GET /sleep" {
				return release
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	release()
	t.Fatalf("no worker became busy with GET /sleep: %+v", ls.srv.Stats().Workers)
	return nil
}

// mainWithTimeout runs Main and fails the test if it does not return.
func mainWithTimeout(t *testing.T, d time.Duration, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- Main(args, strings.NewReader(""), &out, &errb) }()
	select {
	case code = <-done:
	case <-time.After(d):
		t.Fatalf("Main(%q) did not return within %s", args, d)
	}
	return code, out.String(), errb.String()
}

// checkOnce checks a --once snapshot taken with one worker held by
// GET /sleep after one 200 and one 404 were served.
func checkOnce(t *testing.T, ls *liveServer, out string) {
	t.Helper()
	workers := ls.srv.Stats().Workers
	if len(workers) != 2 {
		t.Fatalf("server has %d workers", len(workers))
	}
	for _, w := range workers {
		if !regexp.MustCompile(`(?m)^\s+\d+\s+` + strconv.Itoa(w.PID) + `\s`).MatchString(out) {
			t.Errorf("pid %d not listed:\n%s", w.PID, out)
		}
	}
	if !regexp.MustCompile(`(?m)^\s+[12]\s+\d+\s+busy\s+\d+\s+\d+\.\dMiB\s+0\s+\d+(\.\d)?(ms|s)\s+GET /sleep$`).MatchString(out) {
		t.Errorf("no busy row with GET /sleep, its age and a RSS in MiB:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^\s+[12]\s+\d+\s+idle\s+\d+\s+\d+\.\dMiB\s+0$`).MatchString(out) {
		t.Errorf("no idle row:\n%s", out)
	}
	for _, want := range []string{
		"requests 2", "(since start)", "status 2xx 1  3xx 0  4xx 1  5xx 0  cut 0",
		"workers 2 (1 busy, 1 idle)", "queue 0", "restarts 0",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`latency p50 [0-9.]+m?s  p99 [0-9.]+m?s`).MatchString(out) {
		t.Errorf("no latency figures:\n%s", out)
	}
}

func TestOnceLiveTCP(t *testing.T) {
	ls := startServer(t, "127.0.0.1:0")
	if ls.get(t, "/") != 200 || ls.get(t, "/missing") != 404 {
		t.Fatal("app did not answer as expected")
	}
	release := ls.holdWorker(t)
	defer release()

	code, out, errs := mainWithTimeout(t, 10*time.Second, "--once", ls.stats)
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	t.Logf("hornbeam top --once %s:\n%s", ls.stats, out)
	checkOnce(t, ls, out)

	// The same through http://HOST:PORT and --stats.
	code, out, errs = mainWithTimeout(t, 10*time.Second, "--once", "--stats", "http://"+ls.stats)
	if code != 0 || errs != "" {
		t.Fatalf("http:// form: exit %d, stderr %q", code, errs)
	}
	checkOnce(t, ls, out)
}

func TestOnceLiveUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "stats.sock")
	ls := startServer(t, "unix:"+sock)
	if ls.stats != "unix:"+sock {
		t.Fatalf("stats address %q", ls.stats)
	}
	if ls.get(t, "/") != 200 || ls.get(t, "/missing") != 404 {
		t.Fatal("app did not answer as expected")
	}
	release := ls.holdWorker(t)
	defer release()

	code, out, errs := mainWithTimeout(t, 10*time.Second, "--once", "unix:"+sock)
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	checkOnce(t, ls, out)
}

// deadAddr is a TCP address nothing listens on.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestOnceDeadAddress(t *testing.T) {
	addr := deadAddr(t)
	sock := filepath.Join(t.TempDir(), "none.sock")
	for _, target := range []string{addr, "unix:" + sock} {
		code, out, errs := mainWithTimeout(t, 10*time.Second, "--once", target)
		if code == 0 {
			t.Errorf("%s: exit 0 for a dead endpoint", target)
		}
		if out != "" {
			t.Errorf("%s: stdout %q", target, out)
		}
		if strings.Count(errs, "\n") != 1 || !strings.HasSuffix(errs, "\n") {
			t.Errorf("%s: want one line on stderr, got %q", target, errs)
		}
		for _, want := range []string{"hornbeam top: cannot reach", "start hornbeam with --stats-bind " + target} {
			if !strings.Contains(errs, want) {
				t.Errorf("%s: stderr %q lacks %q", target, errs, want)
			}
		}
	}
	// The interactive and plain modes fail the same way on the first poll.
	if code, _, errs := mainWithTimeout(t, 10*time.Second, addr); code == 0 || !strings.Contains(errs, "--stats-bind") {
		t.Errorf("without --once: exit %d, stderr %q", code, errs)
	}
}

func TestOnceNotAStatsEndpoint(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	defer ts.Close()
	code, _, errs := mainWithTimeout(t, 10*time.Second, "--once", ts.URL)
	if code == 0 || !strings.Contains(errs, "404") || !strings.Contains(errs, "--stats-bind address (not its --bind)") {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
}

func TestBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{"--interval", "soon"}, {"--interval", "0"}, {"a:1", "b:2"}, {"--stats", "a:1", "b:2"}, {"--nope"}, {"--once", "nonsense"},
	} {
		code, out, errs := mainWithTimeout(t, 5*time.Second, args...)
		if code != 2 || out != "" || errs == "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2 and a message", args, code, out, errs)
		}
	}
	if code, out, errs := mainWithTimeout(t, 5*time.Second, "--help"); code != 0 || !strings.Contains(out, "usage: hornbeam top") || errs != "" {
		t.Errorf("--help: exit %d, stdout %q, stderr %q; want 0 and the usage on stdout", code, out, errs)
	}
}

// lockedBuffer is safe for the server's concurrent writes.
type lockedBuffer = testutil.SyncBuffer

// waitFor polls cond on s() until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, s func() string, cond func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if cond(s()) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; output so far:\n%s", what, d, s())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPlainLinesWhenNotATerminal(t *testing.T) {
	ls := startServer(t, "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errs lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--interval", "200ms", ls.stats}, strings.NewReader(""), &out, &errs)
	}()

	waitFor(t, 5*time.Second, "first snapshot", out.String, func(s string) bool {
		return strings.Contains(s, "requests 0") && strings.Contains(s, "(since start)")
	})
	for range 4 {
		ls.get(t, "/")
	}
	waitFor(t, 5*time.Second, "a later snapshot with the 4 requests", out.String, func(s string) bool {
		return strings.Contains(s, "requests 4") && strings.Contains(s, "(last ")
	})
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("plain mode did not stop with its context")
	}
	s := out.String()
	if strings.Contains(s, "\x1b") {
		t.Errorf("escape sequences in plain output")
	}
	if n := strings.Count(s, "--- "); n < 2 {
		t.Errorf("%d snapshots, want several", n)
	}
	if errs.String() != "" {
		t.Errorf("stderr %q", errs.String())
	}
	for _, w := range ls.srv.Stats().Workers {
		if !strings.Contains(s, fmt.Sprintf(" %d ", w.PID)) {
			t.Errorf("pid %d missing", w.PID)
		}
	}
}
