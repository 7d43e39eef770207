package hornbeam_test

import (
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/hornbeam-go/hornbeam"
)

func TestThreads(t *testing.T) {
	s := start(t, "core", hornbeam.Options{Workers: 1, Threads: 4})
	// Four 0.5 s requests on one worker with 4 threads overlap.
	t0 := time.Now()
	var wg sync.WaitGroup
	codes := make([]int, 4)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(s.URL + "/sleep?s=0.5")
			if err != nil {
				return
			}
			io.ReadAll(resp.Body)
			resp.Body.Close()
			codes[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	if d := time.Since(t0); d > 1500*time.Millisecond {
		t.Errorf("4 concurrent 0.5 s requests on 4 threads took %s: they did not run in parallel", d)
	}
	for i, c := range codes {
		if c != 200 {
			t.Errorf("request %d: %d", i, c)
		}
	}
	// State calls from several threads at once are answered to the right
	// thread.
	var wg2 sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg2.Add(1)
		go func() {
			defer wg2.Done()
			resp, err := http.Get(s.URL + "/stream?key=threaded&delay=0.01")
			if err == nil {
				io.ReadAll(resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg2.Wait()
	waitFor(t, 5*time.Second, "8 close() calls counted from 4 threads", func() bool {
		v, _, _ := s.StateGet("closed:threaded")
		return v == int64(8)
	})
	resp, err := http.Get(s.URL + "/sleep?s=0")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

func TestThreadsEnviron(t *testing.T) {
	s := start(t, "echo", hornbeam.Options{Workers: 1, Threads: 2})
	resp, err := http.Get(s.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	if env := echoEnviron(t, resp); env["wsgi.multithread"] != true {
		t.Errorf("wsgi.multithread = %v with 2 threads", env["wsgi.multithread"])
	}
}

// A threaded worker asked to stop finishes its requests, state calls
// included (close() of this response sleeps, then calls state_incr, after
// the server has sent Shutdown), then exits.
func TestThreadsShutdownWithStateCall(t *testing.T) {
	s := start(t, "core", hornbeam.Options{Workers: 1, Threads: 2})
	done := make(chan string, 1)
	go func() {
		resp, err := http.Get(s.URL + "/slow-close?key=th")
		if err != nil {
			done <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- string(b)
	}()
	time.Sleep(200 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t0 := time.Now()
	s.Stop(ctx)
	if d := time.Since(t0); d > 4*time.Second {
		t.Errorf("Stop took %s: the worker hung on a state call after Shutdown", d)
	}
	if got := <-done; got != "sent" {
		t.Errorf("in-flight response: %q", got)
	}
	if v, _, _ := s.StateGet("closed:th"); v != int64(1) {
		t.Errorf("close() during shutdown: counter %v", v)
	}
}
