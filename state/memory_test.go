package state

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a manually advanced clock for TTL tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestMemory(t testing.TB, opts Options) *Memory {
	t.Helper()
	if opts.JanitorInterval == 0 {
		opts.JanitorInterval = -1 // tests drive reclamation explicitly
	}
	m := NewMemory(opts)
	t.Cleanup(m.Close)
	return m
}

func mustGet(t *testing.T, m *Memory, key string) Value {
	t.Helper()
	v, ok := m.Get(key)
	if !ok {
		t.Fatalf("Get(%q): not found", key)
	}
	return v
}

func equalValue(a, b Value) bool {
	return a.IsInt == b.IsInt && a.Int == b.Int && bytes.Equal(a.Raw, b.Raw) && (a.Raw == nil) == (b.Raw == nil)
}

func TestSetGetDelete(t *testing.T) {
	tests := []struct {
		name string
		key  string
		val  Value
	}{
		{"blob", "k", RawValue([]byte("marshal\x00bytes"))},
		{"empty blob", "e", RawValue(nil)},
		{"int", "i", IntValue(-42)},
		{"empty key", "", RawValue([]byte("x"))},
		{"binary key", "\x00\xff\x00", IntValue(math.MaxInt64)},
	}
	m := newTestMemory(t, Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, ok := m.Get(tt.key); ok {
				t.Fatal("present before Set")
			}
			if err := m.Set(tt.key, tt.val, 0); err != nil {
				t.Fatal(err)
			}
			got := mustGet(t, m, tt.key)
			if got.IsInt != tt.val.IsInt || got.Int != tt.val.Int || !bytes.Equal(got.Raw, tt.val.Raw) {
				t.Fatalf("Get = %+v, want %+v", got, tt.val)
			}
			if got.IsInt && got.Raw != nil {
				t.Fatal("int value has non-nil Raw")
			}
			if !got.IsInt && got.Raw == nil {
				t.Fatal("blob value has nil Raw")
			}
			if !m.Delete(tt.key) {
				t.Fatal("Delete reported absent")
			}
			if m.Delete(tt.key) {
				t.Fatal("second Delete reported present")
			}
			if _, ok := m.Get(tt.key); ok {
				t.Fatal("present after Delete")
			}
		})
	}
	if st := m.Stats(); st.Keys != 0 || st.Bytes != 0 {
		t.Fatalf("Stats after deleting all = %+v", st)
	}
}

func TestSetCopiesAndReplaces(t *testing.T) {
	m := newTestMemory(t, Options{})
	buf := []byte("abc")
	if err := m.Set("k", RawValue(buf), 0); err != nil {
		t.Fatal(err)
	}
	buf[0] = 'X'
	got := mustGet(t, m, "k")
	if string(got.Raw) != "abc" {
		t.Fatalf("store did not copy: %q", got.Raw)
	}
	// An int Set ignores Raw and replaces the blob.
	if err := m.Set("k", Value{Int: 7, IsInt: true, Raw: []byte("ignored")}, 0); err != nil {
		t.Fatal(err)
	}
	if v := mustGet(t, m, "k"); !equalValue(v, IntValue(7)) {
		t.Fatalf("Get = %+v", v)
	}
	// The slice handed out earlier is unaffected by the replacement.
	if string(got.Raw) != "abc" {
		t.Fatalf("old Raw changed: %q", got.Raw)
	}
	if st := m.Stats(); st.Keys != 1 || st.Bytes != entrySize("k", 0) {
		t.Fatalf("Stats = %+v", st)
	}
}

func TestGetMultiAndKeys(t *testing.T) {
	m := newTestMemory(t, Options{Shards: 4})
	for _, k := range []string{"user:2", "user:1", "user:10", "sess:a", "", "userx"} {
		if err := m.Set(k, RawValue([]byte(k)), 0); err != nil {
			t.Fatal(err)
		}
	}
	vals, found := m.GetMulti([]string{"user:1", "nope", "", "user:1"})
	wantFound := []bool{true, false, true, true}
	if !slices.Equal(found, wantFound) {
		t.Fatalf("found = %v, want %v", found, wantFound)
	}
	if string(vals[0].Raw) != "user:1" || vals[1].Raw != nil || string(vals[2].Raw) != "" || vals[2].Raw == nil {
		t.Fatalf("values = %+v", vals)
	}
	if v, f := m.GetMulti(nil); len(v) != 0 || len(f) != 0 {
		t.Fatal("GetMulti(nil) not empty")
	}

	tests := []struct {
		prefix string
		want   []string
	}{
		{"user:", []string{"user:1", "user:10", "user:2"}},
		{"user", []string{"user:1", "user:10", "user:2", "userx"}},
		{"", []string{"", "sess:a", "user:1", "user:10", "user:2", "userx"}},
		{"zzz", []string{}},
		{"user:10", []string{"user:10"}},
	}
	for _, tt := range tests {
		if got := m.Keys(tt.prefix); !slices.Equal(got, tt.want) {
			t.Errorf("Keys(%q) = %q, want %q", tt.prefix, got, tt.want)
		}
	}
}

func TestIncr(t *testing.T) {
	tests := []struct {
		name    string
		initial *Value // nil: absent
		delta   int64
		want    int64
		wantErr error
	}{
		{"absent starts at zero", nil, 5, 5, nil},
		{"absent negative", nil, -3, -3, nil},
		{"existing", ptr(IntValue(10)), 32, 42, nil},
		{"negative delta", ptr(IntValue(10)), -11, -1, nil},
		{"zero delta", ptr(IntValue(9)), 0, 9, nil},
		{"to max", ptr(IntValue(math.MaxInt64 - 1)), 1, math.MaxInt64, nil},
		{"to min", ptr(IntValue(math.MinInt64 + 1)), -1, math.MinInt64, nil},
		{"overflow", ptr(IntValue(math.MaxInt64)), 1, 0, ErrOverflow},
		{"underflow", ptr(IntValue(math.MinInt64)), -1, 0, ErrOverflow},
		{"big overflow", ptr(IntValue(1)), math.MaxInt64, 0, ErrOverflow},
		{"min delta on zero", ptr(IntValue(0)), math.MinInt64, math.MinInt64, nil},
		{"min delta on -1", ptr(IntValue(-1)), math.MinInt64, 0, ErrOverflow},
		{"raw", ptr(RawValue([]byte("blob"))), 1, 0, ErrNotInteger},
		{"empty raw", ptr(RawValue([]byte{})), 1, 0, ErrNotInteger},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestMemory(t, Options{})
			if tt.initial != nil {
				if err := m.Set("c", *tt.initial, 0); err != nil {
					t.Fatal(err)
				}
			}
			before := m.Stats()
			got, err := m.Incr("c", tt.delta)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				v := mustGet(t, m, "c")
				if !equalValue(v, *tt.initial) {
					t.Fatalf("value changed on error: %+v, was %+v", v, *tt.initial)
				}
				if m.Stats() != before {
					t.Fatalf("stats changed on error")
				}
				return
			}
			if got != tt.want {
				t.Fatalf("Incr = %d, want %d", got, tt.want)
			}
			if v := mustGet(t, m, "c"); !equalValue(v, IntValue(tt.want)) {
				t.Fatalf("Get after Incr = %+v", v)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestValueTooLarge(t *testing.T) {
	m := newTestMemory(t, Options{MaxValueBytes: 10})
	if err := m.Set("k", RawValue(make([]byte, 10)), 0); err != nil {
		t.Fatalf("at limit: %v", err)
	}
	err := m.Set("k", RawValue(make([]byte, 11)), 0)
	if !errors.Is(err, ErrValueTooLarge) {
		t.Fatalf("err = %v", err)
	}
	for _, s := range []string{"11 bytes", "10 bytes", "--state-max-value-bytes"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	if v := mustGet(t, m, "k"); len(v.Raw) != 10 {
		t.Fatal("failed Set changed the value")
	}
	// Ints are not subject to the blob limit.
	if err := m.Set("i", IntValue(1), 0); err != nil {
		t.Fatal(err)
	}
}

func TestTTL(t *testing.T) {
	clk := newFakeClock()
	m := newTestMemory(t, Options{Now: clk.Now})

	if err := m.Set("a", RawValue([]byte("1")), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := m.Set("forever", RawValue([]byte("x")), 0); err != nil {
		t.Fatal(err)
	}
	if err := m.Set("neg", RawValue([]byte("x")), -time.Second); err != nil {
		t.Fatal(err)
	}
	clk.Advance(9 * time.Second)
	mustGet(t, m, "a")
	clk.Advance(time.Second) // exactly at the deadline: expired
	if _, ok := m.Get("a"); ok {
		t.Fatal("a alive at its deadline")
	}
	if _, f := m.GetMulti([]string{"a"}); f[0] {
		t.Fatal("GetMulti returned expired key")
	}
	if got := m.Keys(""); !slices.Equal(got, []string{"forever", "neg"}) {
		t.Fatalf("Keys = %q", got)
	}
	if m.Delete("a") {
		t.Fatal("Delete of expired key reported true")
	}
	clk.Advance(1000 * time.Hour)
	mustGet(t, m, "forever")
	mustGet(t, m, "neg")
	if st := m.Stats(); st.Expired != 1 || st.Keys != 2 {
		t.Fatalf("Stats = %+v", st)
	}
}

func TestTTLExpiredHiddenFromKeysBeforeReclaim(t *testing.T) {
	clk := newFakeClock()
	m := newTestMemory(t, Options{Now: clk.Now})
	m.Set("p:1", IntValue(1), time.Second)
	m.Set("p:2", IntValue(2), 0)
	clk.Advance(2 * time.Second)
	// Not reclaimed yet (no janitor, no writes), but invisible.
	if m.Stats().Keys != 2 {
		t.Fatal("expected lazy reclamation")
	}
	if got := m.Keys("p:"); !slices.Equal(got, []string{"p:2"}) {
		t.Fatalf("Keys = %q", got)
	}
}

func TestTTLResetLonger(t *testing.T) {
	clk := newFakeClock()
	m := newTestMemory(t, Options{Now: clk.Now, Shards: 1})
	m.Set("k", RawValue([]byte("old")), 5*time.Second)
	clk.Advance(3 * time.Second)
	m.Set("k", RawValue([]byte("new")), 10*time.Second) // now expires at t=13s
	clk.Advance(3 * time.Second)                        // t=6s: past the old deadline
	// A write drains the heap; the stale deadline must not remove k.
	m.Set("other", IntValue(1), 0)
	m.c.reapExpired()
	if v := mustGet(t, m, "k"); string(v.Raw) != "new" {
		t.Fatalf("Get = %q", v.Raw)
	}
	clk.Advance(7 * time.Second) // t=13s
	if _, ok := m.Get("k"); ok {
		t.Fatal("k alive after its new deadline")
	}

	// Shorter TTL, and removing a TTL, also take effect.
	m.Set("s", IntValue(1), time.Hour)
	m.Set("s", IntValue(1), time.Second)
	m.Set("p", IntValue(1), time.Second)
	m.Set("p", IntValue(2), 0)
	clk.Advance(2 * time.Second)
	if _, ok := m.Get("s"); ok {
		t.Fatal("shortened TTL ignored")
	}
	if v := mustGet(t, m, "p"); v.Int != 2 {
		t.Fatal("p lost")
	}
	if n := len(m.c.shards[0].expiry); n != 0 {
		t.Fatalf("heap holds %d entries, want 0", n)
	}
}

func TestIncrTTL(t *testing.T) {
	clk := newFakeClock()
	m := newTestMemory(t, Options{Now: clk.Now})
	m.Set("c", IntValue(1), 10*time.Second)
	clk.Advance(5 * time.Second)
	if n, err := m.Incr("c", 1); err != nil || n != 2 {
		t.Fatalf("Incr = %d, %v", n, err)
	}
	clk.Advance(4 * time.Second)
	if v := mustGet(t, m, "c"); v.Int != 2 {
		t.Fatalf("Get = %+v", v)
	}
	clk.Advance(time.Second) // t=10s: the original TTL still applies
	if _, ok := m.Get("c"); ok {
		t.Fatal("Incr extended the TTL")
	}
	// Incr on an expired key starts from zero, with no TTL.
	m.Set("d", IntValue(100), time.Second)
	clk.Advance(time.Second)
	if n, err := m.Incr("d", 3); err != nil || n != 3 {
		t.Fatalf("Incr on expired = %d, %v", n, err)
	}
	clk.Advance(1000 * time.Hour)
	if v := mustGet(t, m, "d"); v.Int != 3 {
		t.Fatalf("Get = %+v", v)
	}
	// Incr on an expired blob is fine too: the blob is gone.
	m.Set("b", RawValue([]byte("x")), time.Second)
	clk.Advance(time.Second)
	if n, err := m.Incr("b", 1); err != nil || n != 1 {
		t.Fatalf("Incr on expired blob = %d, %v", n, err)
	}
}

func TestHugeTTL(t *testing.T) {
	clk := newFakeClock()
	m := newTestMemory(t, Options{Now: clk.Now})
	m.Set("k", IntValue(1), time.Duration(math.MaxInt64))
	clk.Advance(100 * 365 * 24 * time.Hour)
	mustGet(t, m, "k")
}

func TestJanitorReclaims(t *testing.T) {
	clk := newFakeClock()
	m := NewMemory(Options{Now: clk.Now, JanitorInterval: 5 * time.Millisecond, Shards: 1})
	defer m.Close()
	for i := range 3000 { // more than one reapBatch per shard
		m.Set(fmt.Sprint("t", i), RawValue(make([]byte, 10)), time.Minute)
	}
	m.Set("keep", RawValue([]byte("x")), 0)
	want := entrySize("keep", 1)
	clk.Advance(time.Minute)
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := m.Stats()
		if st.Keys == 1 && st.Bytes == want && st.Expired == 3000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("janitor did not reclaim: %+v", st)
		}
		time.Sleep(2 * time.Millisecond)
	}
	mustGet(t, m, "keep")
}

func TestCloseTwice(t *testing.T) {
	m := NewMemory(Options{JanitorInterval: time.Millisecond})
	m.Close()
	m.Close()
	// Still usable.
	if err := m.Set("k", IntValue(1), 0); err != nil {
		t.Fatal(err)
	}
	mustGet(t, m, "k")
	NewMemory(Options{JanitorInterval: -1}).Close()
}

func TestLRUEviction(t *testing.T) {
	// Each entry: 1-byte key + 10-byte value + overhead.
	per := entrySize("a", 10)
	m := newTestMemory(t, Options{Shards: 1, MaxBytes: 3 * per})
	v := RawValue(make([]byte, 10))
	for _, k := range []string{"a", "b", "c"} {
		if err := m.Set(k, v, 0); err != nil {
			t.Fatal(err)
		}
	}
	mustGet(t, m, "a")        // order, most recent first: a c b
	m.GetMulti([]string{"b"}) // b a c
	m.Set("d", v, 0)          // evicts c
	assertKeys(t, m, "a", "b", "d")
	if _, err := m.Incr("x", 1); err != nil { // smaller entry; evicts a
		t.Fatal(err)
	}
	assertKeys(t, m, "b", "d", "x")
	// Re-setting an existing key with a bigger value evicts others, not itself.
	if err := m.Set("x", RawValue(make([]byte, 11+per)), 0); err != nil {
		t.Fatal(err)
	}
	assertKeys(t, m, "x")
	st := m.Stats()
	if st.Evictions != 4 || st.Bytes > 3*per {
		t.Fatalf("Stats = %+v", st)
	}
}

func TestEvictionTooLarge(t *testing.T) {
	per := entrySize("a", 10)
	m := newTestMemory(t, Options{Shards: 2, MaxBytes: 2 * 2 * per})
	v := RawValue(make([]byte, 10))
	for i := range 4 {
		m.Set(fmt.Sprint(i), v, 0)
	}
	before := m.Stats()
	// Fits MaxValueBytes and MaxBytes overall, but not one shard's budget.
	err := m.Set("big", RawValue(make([]byte, 3*per)), 0)
	if !errors.Is(err, ErrValueTooLarge) {
		t.Fatalf("err = %v", err)
	}
	for _, s := range []string{"shard", fmt.Sprint(2 * per)} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	if st := m.Stats(); st != before {
		t.Fatalf("store changed: %+v -> %+v", before, st)
	}
	// A huge key via Incr is refused the same way.
	if _, err := m.Incr(strings.Repeat("k", int(3*per)), 1); !errors.Is(err, ErrValueTooLarge) {
		t.Fatalf("Incr err = %v", err)
	}
}

func TestEvictExpiredFirst(t *testing.T) {
	clk := newFakeClock()
	per := entrySize("abc", 10) // all keys are 3 bytes
	m := newTestMemory(t, Options{Shards: 1, MaxBytes: 3 * per, Now: clk.Now})
	v := RawValue(make([]byte, 10))
	m.Set("old", v, 0)           // least recently used
	m.Set("ttl", v, time.Second) // will expire
	m.Set("frs", v, time.Minute) // will not
	m.Get("ttl")                 // most recently used, yet expires
	clk.Advance(time.Second)
	m.Set("new", v, 0)
	assertKeys(t, m, "frs", "new", "old")
	st := m.Stats()
	if st.Expired != 1 || st.Evictions != 0 {
		t.Fatalf("Stats = %+v", st)
	}
	// Now full of live entries: LRU applies.
	m.Set("nwr", v, 0)
	assertKeys(t, m, "frs", "new", "nwr")
}

func assertKeys(t *testing.T, m *Memory, want ...string) {
	t.Helper()
	if got := m.Keys(""); !slices.Equal(got, want) {
		t.Fatalf("Keys = %q, want %q", got, want)
	}
}

func TestMemoryBoundHolds(t *testing.T) {
	const maxBytes = 64 << 10
	m := newTestMemory(t, Options{Shards: 8, MaxBytes: maxBytes})
	for i := range 5000 {
		if err := m.Set(fmt.Sprint("key", i), RawValue(make([]byte, i%700)), 0); err != nil {
			t.Fatal(err)
		}
	}
	st := m.Stats()
	if st.Bytes > maxBytes || st.Evictions == 0 || st.Keys == 0 {
		t.Fatalf("Stats = %+v", st)
	}
	if n := len(m.Keys("")); n != st.Keys {
		t.Fatalf("Keys() has %d, Stats %d", n, st.Keys)
	}
}

func TestShardCount(t *testing.T) {
	for _, tt := range []struct{ in, want int }{{0, 64}, {-5, 64}, {1, 1}, {3, 4}, {64, 64}, {100, 128}, {1 << 30, 1 << 16}} {
		m := NewMemory(Options{Shards: tt.in, JanitorInterval: -1})
		if got := len(m.c.shards); got != tt.want {
			t.Errorf("Shards %d -> %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestIncrAtomic(t *testing.T) {
	m := newTestMemory(t, Options{})
	const workers, each = 8, 10000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range each {
				if _, err := m.Incr("shared", 1); err != nil {
					t.Error(err)
					return
				}
				m.Incr(fmt.Sprint("own", w), 1)
			}
		})
	}
	wg.Wait()
	if v := mustGet(t, m, "shared"); v.Int != workers*each {
		t.Fatalf("shared = %d, want %d", v.Int, workers*each)
	}
	for w := range workers {
		if v := mustGet(t, m, fmt.Sprint("own", w)); v.Int != each {
			t.Fatalf("own%d = %d", w, v.Int)
		}
	}
}

// TestConcurrentMixedAtomic exercises every operation concurrently with TTLs,
// eviction and the janitor, for the race detector.
func TestConcurrentMixedAtomic(t *testing.T) {
	m := NewMemory(Options{Shards: 4, MaxBytes: 32 << 10, JanitorInterval: time.Millisecond})
	defer m.Close()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				k := fmt.Sprint("k", (i*7+w)%50)
				switch i % 6 {
				case 0:
					m.Set(k, RawValue([]byte(k)), time.Duration(i%3)*time.Millisecond)
				case 1:
					m.Incr(k, 1)
				case 2:
					m.Get(k)
				case 3:
					m.Delete(k)
				case 4:
					m.GetMulti([]string{k, "k1"})
				case 5:
					if i%100 == 5 {
						m.Keys("k")
						m.Stats()
					}
				}
			}
		})
	}
	wg.Wait()
}

// OnChange hears of every change to a key: set, incr (new and existing),
// delete, expiry (on lookup and by the janitor's drain) and eviction; reads
// and failed writes are silent.
func TestOnChange(t *testing.T) {
	clk := newFakeClock()
	var changed []string
	m := NewMemory(Options{Shards: 1, MaxBytes: 3 * entrySize("k1", 1), JanitorInterval: -1, Now: clk.Now,
		OnChange: func(k string) { changed = append(changed, k) }})
	defer m.Close()
	steps := []struct {
		name string
		do   func()
		want []string
	}{
		{"set", func() { m.Set("k1", RawValue([]byte("a")), 0) }, []string{"k1"}},
		{"get", func() { m.Get("k1"); m.GetExpiry("k1"); m.GetMulti([]string{"k1", "zz"}) }, nil},
		{"incr new", func() { m.Incr("n", 1) }, []string{"n"}},
		{"incr existing", func() { m.Incr("n", 2) }, []string{"n"}},
		{"incr on a blob fails", func() { m.Incr("k1", 1) }, nil},
		{"delete", func() { m.Delete("n") }, []string{"n"}},
		{"delete missing", func() { m.Delete("n") }, nil},
		{"set with ttl", func() { m.Set("t", RawValue([]byte("b")), time.Second) }, []string{"t"}},
		{"expired on lookup", func() { clk.Advance(2 * time.Second); m.Get("t") }, []string{"t"}},
		{"eviction", func() {
			m.Set("k2", RawValue([]byte("c")), 0)
			m.Set("k3", RawValue([]byte("d")), 0)
			m.Set("k4", RawValue([]byte("e")), 0) // over the budget: k1, least recently used, goes
		}, []string{"k2", "k3", "k1", "k4"}},
		{"too large", func() { m.Set("big", RawValue(make([]byte, 1000)), 0) }, nil},
	}
	for _, st := range steps {
		changed = nil
		st.do()
		if !slices.Equal(changed, st.want) {
			t.Errorf("%s: OnChange heard %q, want %q", st.name, changed, st.want)
		}
	}
	v, exp, ok := m.GetExpiry("k2")
	if !ok || string(v.Raw) != "c" || !exp.IsZero() {
		t.Errorf("GetExpiry(k2) = %q %v %v", v.Raw, exp, ok)
	}
	m.Set("t2", RawValue([]byte("x")), 5*time.Second)
	if _, exp, _ := m.GetExpiry("t2"); !exp.Equal(clk.Now().Add(5 * time.Second)) {
		t.Errorf("GetExpiry(t2) expires at %v, want %v", exp, clk.Now().Add(5*time.Second))
	}
}
