package hornbeam_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hornbeam-go/hornbeam"
)

// allowedCPUs reads a task's Cpus_allowed_list from a /proc status file.
func allowedCPUs(t *testing.T, status string) string {
	t.Helper()
	b, err := os.ReadFile(status)
	if err != nil {
		return "" // the task has ended
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("%s has no Cpus_allowed_list", status)
	return ""
}

// --cpu-affinity: worker slot i and all its threads run on CPU i (round
// robin over the CPUs the server may use), and so does a server thread
// that answers its state calls; state calls still work, across threads.
func TestCPUAffinity(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("CPU affinity is Linux only")
	}
	self := allowedCPUs(t, "/proc/thread-self/status") // not self: the main thread may have served a pinned worker
	if self != "0-1" && !strings.HasPrefix(self, "0-") {
		t.Skipf("this test expects CPUs 0 and 1 to be allowed, have %q", self)
	}
	for _, preload := range []bool{false, true} {
		t.Run(fmt.Sprintf("preload=%v", preload), func(t *testing.T) {
			const workers, threads, n = 3, 2, 2000
			srv := start(t, "st_state:application", hornbeam.Options{
				Workers: workers, Threads: threads, CPUAffinity: true, Preload: preload, Timeout: time.Minute,
			})
			key := fmt.Sprintf("affinity-%v", preload)
			parallel(2*workers*threads, func(int) {
				var r pyReply
				getJSON(t, srv.URL+fmt.Sprintf("/incr?key=%s&n=%d", key, n), &r)
			})
			if v, _ := goGet(t, srv, key); v != int64(2*workers*threads*n) {
				t.Errorf("%d concurrent state_incr loops of %d ended at %v", 2*workers*threads, n, v)
			}
			pinned := map[string]bool{} // CPUs of this process's threads pinned to one CPU
			tasks, _ := filepath.Glob("/proc/self/task/*/status")
			for _, s := range tasks {
				if cpus := allowedCPUs(t, s); cpus != "" && !strings.ContainsAny(cpus, "-,") {
					pinned[cpus] = true
				}
			}
			for _, w := range srv.Stats().Workers {
				want := fmt.Sprint((w.Slot - 1) % runtime.NumCPU())
				tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", w.PID))
				if len(tasks) < threads {
					t.Errorf("worker %d has %d threads, want at least %d", w.PID, len(tasks), threads)
				}
				for _, s := range tasks {
					if got := allowedCPUs(t, s); got != "" && got != want {
						t.Errorf("worker slot %d: thread %s may run on CPUs %q, want %q", w.Slot, s, got, want)
					}
				}
				if !pinned[want] {
					t.Errorf("no server thread is pinned to CPU %s, worker slot %d's (pinned: %v)", want, w.Slot, pinned)
				}
			}
		})
	}
}

// Without --cpu-affinity nothing is pinned.
func TestNoCPUAffinityByDefault(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Linux only")
	}
	self := allowedCPUs(t, "/proc/thread-self/status") // not self: the main thread may have served a pinned worker
	srv := start(t, "st_state:application", hornbeam.Options{Workers: 1})
	var r pyReply
	getJSON(t, srv.URL+"/incr?key=default-affinity&n=10", &r)
	for _, w := range srv.Stats().Workers {
		if got := allowedCPUs(t, fmt.Sprintf("/proc/%d/status", w.PID)); got != self {
			t.Errorf("worker %d may run on %q, want the server's %q", w.PID, got, self)
		}
	}
}
