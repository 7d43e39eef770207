package hornbeam_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hornbeam-go/hornbeam"
)

// openFDs is the number of open file descriptors of this process.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count descriptors: %v", err)
	}
	return len(ents)
}

// leakLoad runs n requests with `clients` concurrent keep-alive clients.
// Request i (from 1) is, when i%100 == 0, a client that sends half of a
// body and closes; else when i%50 == 0, a client that opens a stream and
// closes after its first chunk; else a normal keep-alive request (a GET or
// a small POST) whose answer is checked. It returns the number of normal
// requests that failed and a sample of their errors.
func leakLoad(s *testServer, n, clients int) (failed int64, sample []string) {
	var (
		next atomic.Int64
		bad  atomic.Int64
		mu   sync.Mutex
		wg   sync.WaitGroup
	)
	fail := func(format string, args ...any) {
		bad.Add(1)
		mu.Lock()
		if len(sample) < 5 {
			sample = append(sample, fmt.Sprintf(format, args...))
		}
		mu.Unlock()
	}
	addr := hostOf(s)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				switch {
				case i%100 == 0:
					abortBody(addr)
				case i%50 == 0:
					abortStream(addr)
				default:
					var resp *http.Response
					var err error
					if i%2 == 0 {
						resp, err = client.Get(fmt.Sprintf("%s/leak?i=%d", s.URL, i))
					} else {
						resp, err = client.Post(s.URL+"/leak", "text/plain", strings.NewReader("body"))
					}
					if err != nil {
						fail("request %d: %v", i, err)
						continue
					}
					b, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil || resp.StatusCode != 200 || !strings.Contains(string(b), `"path": "/leak"`) {
						fail("request %d: %d %q %v", i, resp.StatusCode, b, err)
					}
				}
			}
		}()
	}
	wg.Wait()
	return bad.Load(), sample
}

// abortStream opens /stream and hangs up after the first chunk.
func abortStream(addr string) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /stream?delay=0.05 HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil || strings.HasPrefix(line, "one") {
			return
		}
	}
}

// abortBody announces a 1000-byte body, sends half and hangs up.
func abortBody(addr string) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return
	}
	io.WriteString(c, "POST /half HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"+strings.Repeat("h", 500))
	c.Close()
}

// TestLeak runs 100,000 requests (10,000 under -short) through a 2-worker
// server, a fiftieth of them hanging up mid-response and a hundredth
// mid-body, and checks that goroutines and file descriptors come back to
// where they were.
func TestLeak(t *testing.T) {
	total := 100_000
	if testing.Short() {
		total = 10_000
	}
	// Threads: each aborted /stream keeps its worker thread for its whole
	// 0.15 s (the app cannot be interrupted); with 4 threads per worker
	// those sleeps overlap instead of queueing everything behind them.
	s := start(t, "hostile_count", hornbeam.Options{Workers: 2, Threads: 4})

	// Warm up with every kind of request, then let it settle: the
	// aborted streams finish in the workers, the clients' keep-alive
	// connections are closed.
	if bad, sample := leakLoad(s, 500, 16); bad > 0 {
		t.Fatalf("warm-up: %d failures: %q", bad, sample)
	}
	time.Sleep(time.Second)
	runtime.GC()
	baseG, baseF := runtime.NumGoroutine(), openFDs(t)
	baseW := workerFDs(s)

	t0 := time.Now()
	bad, sample := leakLoad(s, total, 16)
	elapsed := time.Since(t0)
	st := s.Stats()
	t.Logf("%d requests with 16 clients in %s (%.0f/s); server: %d requests, by status %v",
		total, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds(), st.Requests, st.Status)
	if bad > 0 {
		t.Errorf("%d normal requests failed, e.g. %q", bad, sample)
	}

	const margin = 10
	var g, f int
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		g, f = runtime.NumGoroutine(), openFDs(t)
		if (g <= baseG+margin && f <= baseF+margin) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("goroutines %d -> %d, descriptors %d -> %d, workers' descriptors %v -> %v", baseG, g, baseF, f, baseW, workerFDs(s))
	if g > baseG+margin {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Errorf("goroutines: %d before, %d after the load (margin %d); stacks:\n%s", baseG, g, margin, buf)
	}
	if f > baseF+margin {
		ents, _ := os.ReadDir("/proc/self/fd")
		var links []string
		for _, e := range ents {
			l, _ := os.Readlink("/proc/self/fd/" + e.Name())
			links = append(links, l)
		}
		t.Errorf("descriptors: %d before, %d after the load (margin %d): %q", baseF, f, margin, links)
	}
	if st.Restarts != 0 {
		t.Errorf("%d workers died under the load", st.Restarts)
	}
	// The workers (the same processes: no --max-requests) hold no more
	// descriptors than before either, e.g. request bodies.
	for pid, n := range workerFDs(s) {
		if b, ok := baseW[pid]; ok && n > b+margin {
			t.Errorf("worker %d: %d descriptors before, %d after the load", pid, b, n)
		}
	}
}

// workerFDs counts the open descriptors of each worker process.
func workerFDs(s *testServer) map[int]int {
	out := map[int]int{}
	for _, w := range s.Stats().Workers {
		if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", w.PID)); err == nil {
			out[w.PID] = len(ents)
		}
	}
	return out
}
