package hornbeam_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hornbeam-go/hornbeam"
)

// workerProcesses counts the live (not zombie) processes descending from
// this test process that run the hornbeam worker runtime: the workers and
// the zygote that forks them (process mode), or the embedded workers (this
// test binary, started again as a worker).
func workerProcesses(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	self, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	parent := map[int]int{}
	isWorker := map[int]bool{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		var state byte
		var ppid int
		if _, err := fmt.Sscanf(string(stat[i+2:]), "%c %d", &state, &ppid); err != nil || state == 'Z' {
			continue
		}
		parent[pid] = ppid
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		exe, _ := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		isWorker[pid] = bytes.Contains(cmd, []byte("hornbeam._worker")) || exe == self ||
			bytes.Contains(cmd, []byte("HornbeamWorker()")) // python3 hosting the worker library
	}
	me, n := os.Getpid(), 0
	for pid := range isWorker {
		if !isWorker[pid] || pid == me {
			continue
		}
		for p, hops := parent[pid], 0; p > 1 && hops < 8; p, hops = parent[p], hops+1 {
			if p == me {
				n++
				break
			}
		}
	}
	return n
}

// TestSupervisionConverges interleaves, at random, SIGKILLs of workers,
// recycles (a tiny --max-requests under load), reloads, timeouts and
// scaling up and down; once things settle the pool must run exactly the
// workers it wants, one per slot, and no stray process.
func TestSupervisionConverges(t *testing.T) {
	for _, preload := range []bool{false, true} {
		t.Run(fmt.Sprintf("preload=%v", preload), func(t *testing.T) {
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			rng := rand.New(rand.NewPCG(seed, seed>>1))
			s := start(t, "core", hornbeam.Options{Workers: 2, MaxRequests: 15, Preload: preload, Timeout: 3 * time.Second, GracefulTimeout: 2 * time.Second})
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			var served atomic.Int64
			client := &http.Client{Timeout: 10 * time.Second}
			for i := 0; i < 4; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for ctx.Err() == nil {
						resp, err := client.Get(s.URL + "/pid")
						if err == nil {
							io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
							served.Add(1)
						}
					}
				}()
			}
			ops := []string{"kill", "kill", "kill", "reload", "ttin", "ttou", "hang"}
			for round := 0; round < 14; round++ {
				time.Sleep(time.Duration(rng.IntN(250)) * time.Millisecond)
				op := ops[rng.IntN(len(ops))]
				switch op {
				case "kill":
					ws := s.Stats().Workers
					if len(ws) > 0 {
						syscall.Kill(ws[rng.IntN(len(ws))].PID, syscall.SIGKILL)
					}
				case "reload":
					go s.Reload(ctx)
				case "ttin":
					go s.Scale(ctx, 1)
				case "ttou":
					go s.Scale(ctx, -1)
				case "hang": // runs past --timeout: 504, that worker is replaced
					go func() {
						resp, err := client.Get(s.URL + "/sleep?s=5")
						if err == nil {
							resp.Body.Close()
						}
					}()
				}
				t.Logf("round %d: %s", round, op)
			}
			cancel()
			wg.Wait()
			if served.Load() == 0 {
				t.Fatal("no request was served during the run")
			}
			// Settle: every worker idle, one per slot, and the process count
			// matching, stable for a while.
			var stableSince time.Time
			var last string
			defer func() {
				if t.Failed() {
					t.Logf("last unsettled state: %s", last)
				}
			}()
			waitFor(t, 30*time.Second, "the pool to settle on its target", func() bool {
				target := s.Pool().Target()
				ws := s.Stats().Workers
				ok := len(ws) == target && workerProcesses(t) == target+zygotes(s)
				slots := map[int]bool{}
				for _, w := range ws {
					ok = ok && w.State == "idle" && !slots[w.Slot]
					slots[w.Slot] = true
				}
				if !ok {
					stableSince = time.Time{}
					last = fmt.Sprintf("target %d, workers %+v, worker processes %d", target, ws, workerProcesses(t))
					return false
				}
				if stableSince.IsZero() {
					stableSince = time.Now()
				}
				return time.Since(stableSince) > 1500*time.Millisecond
			})
			// And it still serves.
			if code, _ := get(t, s.URL+"/pid"); code != 200 {
				t.Errorf("after settling: %d", code)
			}
		})
	}
}

// zygotes is how many zygotes s runs beside its workers: one in the
// process mode, none in the embedded mode but with hosted workers and
// --preload (a python3 that imported the app forks them).
func zygotes(s *testServer) int {
	if s.Embedded() && !(s.Hosted() && s.Preload) {
		return 0
	}
	return 1
}

// TestTimeoutSparesNeighbours: with several threads, a request past
// --timeout gets 504 while the other requests on the same worker finish
// normally; the worker is then replaced, and its stuck thread's stack is
// logged before it goes.
func TestTimeoutSparesNeighbours(t *testing.T) {
	s := start(t, "core", hornbeam.Options{Workers: 1, Threads: 4, Timeout: 2 * time.Second})
	timeoutSparesNeighbour(t, s)
	waitFor(t, 10*time.Second, "the old worker to be dumped and killed", func() bool {
		return workerProcesses(t) == 1+zygotes(s) // the replacement (and the zygote)
	})
	log := s.Log.String()
	if s.Embedded() { // the worker itself stops taking connections and exits
		contains(t, log, "takes no more connections, finishes its other requests (up to 30s) and is replaced", "error log")
		contains(t, log, "timed out after 2", "error log")
	} else {
		contains(t, log, "finishes its 1 other(s)", "error log")
	}
	contains(t, log, "in application", "error log (the stuck thread's stack)")
}

// timeoutSparesNeighbour runs, on s (one worker, several threads, --timeout
// 2s), a request past the timeout and a neighbour on the same worker that
// ends 0.5 s after the other's timeout, within its own: the first gets 504
// at once, the neighbour 200 from the same worker, and new requests then go
// to a replacement.
func timeoutSparesNeighbour(t *testing.T, s *testServer) {
	t.Helper()
	_, pid1 := get(t, s.URL+"/pid")
	var wg sync.WaitGroup
	var slowCode, neighbourCode int
	var neighbourBody string
	wg.Add(2)
	t0 := time.Now()
	go func() {
		defer wg.Done()
		slowCode, _ = get(t, s.URL+"/sleep?s=6")
	}()
	go func() {
		defer wg.Done()
		time.Sleep(time.Second)
		neighbourCode, neighbourBody = get(t, s.URL+"/pid?sleep=1.5")
	}()
	wg.Wait()
	if slowCode != 504 {
		t.Errorf("the request past --timeout: %d, want 504", slowCode)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("took %s: the 504 did not come at the timeout", d)
	}
	if neighbourCode != 200 || neighbourBody != pid1 {
		t.Errorf("the neighbour on the same worker: %d %q, want 200 from worker %s", neighbourCode, neighbourBody, pid1)
	}
	waitForReplacement(t, s, pid1)
}
