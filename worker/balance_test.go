package worker

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestBalance: a worker defers to an accepting worker that holds fewer
// connections, not to one that holds as many or more, nor to one that does
// not accept (entry 0), and never longer than balanceMaxWait.
func TestBalance(t *testing.T) {
	path := filepath.Join(t.TempDir(), "table")
	if err := os.WriteFile(path, make([]byte, BalanceEntries*4), 0o600); err != nil {
		t.Fatal(err)
	}
	open := func(slot int) *balance {
		b, err := openBalance(path, slot)
		if err != nil || b == nil {
			t.Fatalf("openBalance: %v", err)
		}
		return b
	}
	a, b, c := open(0), open(1), open(7)
	for _, tc := range []struct {
		name    string
		a, b, c int64 // connections held; -1: not accepting
		aDefers bool
	}{
		{"all idle", 0, 0, 0, false},
		{"a busier than b", 2, 1, -1, true},
		{"a busier than c only", 3, 3, 1, true},
		{"a as busy as the others", 2, 2, 2, false},
		{"a the least busy", 1, 4, 5, false},
		{"the others not accepting", 9, -1, -1, false},
	} {
		for _, x := range []struct {
			w *balance
			n int64
		}{{a, tc.a}, {b, tc.b}, {c, tc.c}} {
			if x.n < 0 {
				x.w.clear()
			} else {
				x.w.set(x.n)
			}
		}
		if got := a.busier(tc.a); got != tc.aDefers {
			t.Errorf("%s: busier = %v, want %v", tc.name, got, tc.aDefers)
		}
	}
	// A stale entry costs at most balanceMaxWait.
	a.set(5)
	b.set(0)
	start := time.Now()
	a.wait(func() int64 { return 5 })
	if d := time.Since(start); d < balanceMaxWait || d > 10*balanceMaxWait {
		t.Errorf("wait with a less loaded worker that never takes a connection: %s, want about %s", d, balanceMaxWait)
	}
	// Once the other worker holds as many, the wait ends.
	go func() { time.Sleep(5 * time.Millisecond); b.set(5) }()
	start = time.Now()
	a.wait(func() int64 { return 5 })
	if d := time.Since(start); d >= balanceMaxWait {
		t.Errorf("wait after the other worker caught up: %s", d)
	}
	if nb, err := openBalance("", 0); nb != nil || err != nil {
		t.Errorf("no table: %v, %v; want nil, nil", nb, err)
	}
}
