package hornbeam_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hornbeam-go/hornbeam"
)

// writeApp writes a module answering with version v.
func writeApp(t *testing.T, dir, v string) {
	t.Helper()
	src := fmt.Sprintf("import os\n\ndef application(environ, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [b'%s']\n", v)
	path := filepath.Join(dir, "deployed.py")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	// Make sure no stale bytecode hides the change.
	os.RemoveAll(filepath.Join(dir, "__pycache__"))
}

func TestReloadUnderLoad(t *testing.T) {
	for _, preload := range []bool{false, true} {
		t.Run(fmt.Sprintf("preload=%v", preload), func(t *testing.T) {
			dir := t.TempDir()
			writeApp(t, dir, "v1")
			s := start(t, "deployed", hornbeam.Options{Workers: 2, PythonPath: []string{dir}, Preload: preload})
			var failed, total atomic.Int64
			var sawV2 atomic.Bool
			stop := make(chan struct{})
			var wg sync.WaitGroup
			client := &http.Client{Timeout: 10 * time.Second}
			for g := 0; g < 4; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						resp, err := client.Get(s.URL + "/")
						total.Add(1)
						if err != nil {
							if failed.Add(1) <= 3 {
								t.Logf("request failed: %v", err)
							}
							continue
						}
						b, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						if resp.StatusCode != 200 {
							if failed.Add(1) <= 3 {
								t.Logf("request failed: %d %q", resp.StatusCode, b)
							}
						}
						if string(b) == "v2" {
							sawV2.Store(true)
						}
					}
				}()
			}
			time.Sleep(200 * time.Millisecond)
			writeApp(t, dir, "v2")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := s.Reload(ctx); err != nil {
				t.Fatalf("Reload: %v", err)
			}
			time.Sleep(300 * time.Millisecond)
			close(stop)
			wg.Wait()
			if failed.Load() > 0 {
				t.Errorf("%d of %d requests failed during the reload", failed.Load(), total.Load())
			}
			if !sawV2.Load() {
				t.Error("never saw the new code answer")
			}
			// After the old workers drain, only v2 answers.
			waitFor(t, 10*time.Second, "old workers to exit", func() bool { return s.Pool().Workers() == 2 })
			for i := 0; i < 10; i++ {
				if _, body := get(t, s.URL+"/"); body != "v2" {
					t.Fatalf("after reload: %q", body)
				}
			}
			contains(t, s.Log.String(), "reload", "the recycle reason")

			// A broken deploy: the reload fails, the old workers keep serving.
			os.WriteFile(filepath.Join(dir, "deployed.py"), []byte("def application(:\n"), 0o644)
			os.RemoveAll(filepath.Join(dir, "__pycache__"))
			if err := s.Reload(ctx); err == nil || !strings.Contains(err.Error(), "SyntaxError") {
				t.Errorf("reloading broken code: %v, want a SyntaxError", err)
			}
			for i := 0; i < 5; i++ {
				if code, body := get(t, s.URL+"/"); code != 200 || body != "v2" {
					t.Fatalf("after a failed reload: %d %q", code, body)
				}
			}
			contains(t, s.Log.String(), "old workers keep serving", "the failed reload in the log")
		})
	}
}

func TestScale(t *testing.T) {
	s := start(t, "core", hornbeam.Options{Workers: 2})
	ctx := context.Background()
	if n, err := s.Scale(ctx, 1); err != nil || n != 3 {
		t.Fatalf("scale up: %d %v", n, err)
	}
	if got := len(s.Stats().Workers); got != 3 {
		t.Errorf("%d workers in stats after scaling up", got)
	}
	if n, _ := s.Scale(ctx, -2); n != 1 {
		t.Fatalf("scale down: %d", n)
	}
	waitFor(t, 10*time.Second, "one worker left", func() bool { return len(s.Stats().Workers) == 1 })
	if n, _ := s.Scale(ctx, -1); n != 1 {
		t.Errorf("scaled below one worker: %d", n)
	}
	if code, _ := get(t, s.URL+"/pid"); code != 200 {
		t.Errorf("after scaling: %d", code)
	}
	contains(t, s.Log.String(), "scaling down", "the recycle reason")
}

func TestMaxWorkerMemory(t *testing.T) {
	s := start(t, "hostile_mem", hornbeam.Options{Workers: 1, MaxWorkerMemory: 60 << 20})
	_, pid := get(t, s.URL+"/pid")
	if code, _ := get(t, s.URL+"/grow?mb=100"); code != 200 {
		t.Fatalf("grow: %d", code)
	}
	waitFor(t, 15*time.Second, "the worker to be recycled", func() bool {
		resp, err := http.Get(s.URL + "/pid")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == 200 && string(b) != pid
	})
	contains(t, s.Log.String(), "--max-worker-memory", "the recycle reason")
}

func TestHealth(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "broken")
	t.Setenv("HB_BROKEN_MARKER", marker)
	s := start(t, "hostile_flaky", hornbeam.Options{Workers: 1, HealthPath: "/healthz"})
	code, body := get(t, s.URL+"/healthz")
	if code != 200 || !strings.HasPrefix(body, "ok") {
		t.Errorf("healthy: %d %q", code, body)
	}
	// Break the app on disk and kill the only worker: its replacement
	// cannot import, so no worker is ready.
	os.WriteFile(marker, nil, 0o644)
	getOnce(s.URL + "/die") // the embedded worker cuts the connection as it dies
	waitFor(t, 10*time.Second, "health to say 503", func() bool {
		code, _ := get(t, s.URL+"/healthz")
		return code == 503
	})
	if s.Embedded() {
		// No worker serves the listeners: the server answers them itself.
		contains(t, s.Log.String(), "no worker is running: the server answers 503 until one is", "error log")
		if code, body := get(t, s.URL+"/anything"); code != 503 || !strings.Contains(body, "no worker is running") {
			t.Errorf("a request with no worker running: %d %q, want 503", code, body)
		}
	}
	os.Remove(marker)
	waitFor(t, 20*time.Second, "health to recover", func() bool {
		code, _ := get(t, s.URL+"/healthz")
		return code == 200
	})
}

func TestBodyTimeout(t *testing.T) {
	s := start(t, "core", hornbeam.Options{Workers: 1, BodyTimeout: 500 * time.Millisecond})
	c, err := net.Dial("tcp", hostOf(s))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	t0 := time.Now()
	b, _ := io.ReadAll(c)
	if d := time.Since(t0); d > 3*time.Second {
		t.Errorf("a stalled body held the connection for %s with a 500ms body timeout", d)
	}
	if !strings.HasPrefix(string(b), "HTTP/1.1 408") {
		t.Errorf("stalled body: %q, want 408", b)
	}
}

// Stopping while requests wait in the queue: they fail cleanly (no panic
// in a handler), and Stop returns.
func TestStopWithQueuedRequests(t *testing.T) {
	s := start(t, "core", hornbeam.Options{Workers: 1})
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(s.URL + "/sleep?s=1")
			if err == nil {
				io.ReadAll(resp.Body)
				resp.Body.Close()
			}
		}()
	}
	waitFor(t, 5*time.Second, "requests to queue", func() bool {
		st := s.Stats()
		if s.Embedded() {
			// No queue in the master: the worker holds them all, one in
			// Python, the others waiting in it for the Python thread.
			return st.QueueDepth == 0 && len(st.Workers) == 1 && st.Workers[0].Inflight == 5
		}
		return st.QueueDepth >= 2
	})
	// The pool first (as a Go user of package pool may), then the server.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	s.Pool().Stop(ctx)
	s.Stop(ctx)
	wg.Wait()
	if strings.Contains(s.Log.String(), "panic") {
		t.Errorf("a handler panicked during Stop:\n%s", s.Log.String())
	}
}

// A worker that dies after serving a while is replaced at once, however
// often it happens; only a crash loop (dying right after start) backs off.
func TestRepeatedDeathsReplacedAtOnce(t *testing.T) {
	s := start(t, "core", hornbeam.Options{Workers: 1})
	for i := 0; i < 5; i++ {
		time.Sleep(1100 * time.Millisecond) // older than the crash-loop threshold
		old := s.Stats().Workers[0].PID
		syscall.Kill(old, syscall.SIGKILL)
		t0 := time.Now()
		waitFor(t, 5*time.Second, "the replacement", func() bool {
			ws := s.Stats().Workers
			return len(ws) == 1 && ws[0].PID != old && ws[0].State == "idle"
		})
		if d := time.Since(t0); d > 600*time.Millisecond {
			t.Errorf("kill %d: replaced after %s", i+1, d)
		}
	}
}
