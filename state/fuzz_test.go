package state

import (
	"encoding/binary"
	"errors"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
)

// fuzzKeys is a small key space with shared prefixes, the empty key and
// non-UTF-8 bytes, so operations collide and Keys(prefix) is interesting.
var fuzzKeys = []string{"", "a", "ab", "abc", "b", "ba", "\x00", "\xff\xfe"}

var fuzzDeltas = []int64{0, 1, -1, 2, -7, math.MaxInt64, math.MinInt64, math.MaxInt64 - 1}

const fuzzMaxValue = 6

// opReader turns fuzz bytes into operation parameters; it yields zeros once
// the input is exhausted.
type opReader struct{ b []byte }

func (r *opReader) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *opReader) bytes(n int) []byte {
	n = min(n, len(r.b))
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *opReader) key() string { return fuzzKeys[int(r.byte())%len(fuzzKeys)] }

func (r *opReader) int64() int64 {
	var buf [8]byte
	copy(buf[:], r.bytes(8))
	return int64(binary.LittleEndian.Uint64(buf[:]))
}

// FuzzStore runs a sequence of operations decoded from the input against a
// Memory store and a plain map model (no TTL, no memory bound) and checks
// that every result, the key listing and the Stats counters agree.
func FuzzStore(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 1, 3, 'x', 'y', 'z', 2, 1, 4, 1})
	f.Add([]byte{4, 2, 1, 4, 2, 5, 4, 2, 6, 3, 2, 5, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		m := NewMemory(Options{Shards: 2, MaxValueBytes: fuzzMaxValue, JanitorInterval: -1})
		defer m.Close()
		model := map[string]Value{}
		r := &opReader{b: data}
		for step := 0; len(r.b) > 0 && step < 200; step++ {
			op := r.byte() % 8
			switch op {
			case 0: // Set blob, length 0..7 (7 exceeds MaxValueBytes)
				k := r.key()
				raw := append([]byte(nil), r.bytes(int(r.byte()%8))...)
				err := m.Set(k, RawValue(raw), 0)
				if len(raw) > fuzzMaxValue {
					if !errors.Is(err, ErrValueTooLarge) {
						t.Fatalf("step %d: Set %d bytes: err = %v", step, len(raw), err)
					}
					break
				}
				if err != nil {
					t.Fatalf("step %d: Set: %v", step, err)
				}
				model[k] = RawValue(append([]byte{}, raw...))
			case 1: // Set int, with a TTL <= 0 meaning "no expiry"
				k := r.key()
				n := r.int64()
				if err := m.Set(k, IntValue(n), -1); err != nil {
					t.Fatalf("step %d: Set int: %v", step, err)
				}
				model[k] = IntValue(n)
			case 2: // Get
				k := r.key()
				got, ok := m.Get(k)
				want, wok := model[k]
				if ok != wok || (ok && !equalValue(got, want)) {
					t.Fatalf("step %d: Get(%q) = %+v,%v; model %+v,%v", step, k, got, ok, want, wok)
				}
			case 3: // Delete
				k := r.key()
				_, wok := model[k]
				if got := m.Delete(k); got != wok {
					t.Fatalf("step %d: Delete(%q) = %v, model %v", step, k, got, wok)
				}
				delete(model, k)
			case 4: // Incr
				k := r.key()
				sel := r.byte()
				delta := fuzzDeltas[int(sel)%len(fuzzDeltas)]
				if sel >= 128 {
					delta = r.int64()
				}
				got, err := m.Incr(k, delta)
				cur, ok := model[k]
				switch {
				case ok && !cur.IsInt:
					if !errors.Is(err, ErrNotInteger) {
						t.Fatalf("step %d: Incr on blob: %d, %v", step, got, err)
					}
				default:
					want, fits := addInt64(cur.Int, delta)
					if !fits {
						if !errors.Is(err, ErrOverflow) {
							t.Fatalf("step %d: Incr(%d+%d): %d, %v, want overflow", step, cur.Int, delta, got, err)
						}
						break
					}
					if err != nil || got != want {
						t.Fatalf("step %d: Incr(%d+%d) = %d, %v; want %d", step, cur.Int, delta, got, err, want)
					}
					model[k] = IntValue(want)
				}
			case 5: // GetMulti
				keys := []string{r.key(), r.key(), r.key()}
				vals, found := m.GetMulti(keys)
				for i, k := range keys {
					want, wok := model[k]
					if found[i] != wok || (wok && !equalValue(vals[i], want)) {
						t.Fatalf("step %d: GetMulti[%q] = %+v,%v; model %+v,%v", step, k, vals[i], found[i], want, wok)
					}
				}
			case 6: // Keys
				p := r.key()
				var want []string
				for k := range model {
					if strings.HasPrefix(k, p) {
						want = append(want, k)
					}
				}
				slices.Sort(want)
				if got := m.Keys(p); !slices.Equal(got, want) {
					t.Fatalf("step %d: Keys(%q) = %q, model %q", step, p, got, want)
				}
			case 7: // Stats
				checkStats(t, m, model)
			}
		}
		checkStats(t, m, model)
		if got, want := m.Keys(""), slices.Sorted(maps.Keys(model)); !slices.Equal(got, want) {
			t.Fatalf("final Keys = %q, model %q", got, want)
		}
	})
}

func checkStats(t *testing.T, m *Memory, model map[string]Value) {
	t.Helper()
	var bytes int64
	for k, v := range model {
		bytes += entrySize(k, len(v.Raw))
	}
	want := Stats{Keys: len(model), Bytes: bytes}
	if got := m.Stats(); got != want {
		t.Fatalf("Stats = %+v, model %+v", got, want)
	}
}
