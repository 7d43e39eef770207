package state

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

const benchKeys = 1024

func benchKeyNames() []string {
	keys := make([]string, benchKeys)
	for i := range keys {
		keys[i] = "bench:key:" + strconv.Itoa(i)
	}
	return keys
}

// BenchmarkIncrParallel increments counters from GOMAXPROCS goroutines:
// "distinct" gives each goroutine its own key (should scale with cores),
// "same" makes all of them hit one key (serialized on one shard lock).
func BenchmarkIncrParallel(b *testing.B) {
	b.Run("distinct", func(b *testing.B) {
		m := newTestMemory(b, Options{})
		var id atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			key := "counter:" + strconv.FormatInt(id.Add(1), 10)
			for pb.Next() {
				m.Incr(key, 1)
			}
		})
	})
	b.Run("same", func(b *testing.B) {
		m := newTestMemory(b, Options{})
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				m.Incr("counter", 1)
			}
		})
	})
}

// BenchmarkGetParallel reads 100-byte blobs spread over 1024 keys;
// "bounded" sets MaxBytes (all keys fit) so every Get also updates the LRU.
func BenchmarkGetParallel(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts Options
	}{
		{"unbounded", Options{}},
		{"bounded", Options{MaxBytes: 64 << 20}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			m := newTestMemory(b, bc.opts)
			keys := benchKeyNames()
			for _, k := range keys {
				m.Set(k, RawValue(make([]byte, 100)), 0)
			}
			var id atomic.Int64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := int(id.Add(1)) * 7919
				for pb.Next() {
					if _, ok := m.Get(keys[i%benchKeys]); !ok {
						b.Fatal("missing")
					}
					i++
				}
			})
		})
	}
}

// BenchmarkSet overwrites 100-byte blobs over 1024 keys from one goroutine;
// "ttl" adds a TTL (heap maintenance), "bounded" runs under a MaxBytes
// that forces an eviction on most writes.
func BenchmarkSet(b *testing.B) {
	keys := benchKeyNames()
	v := RawValue(make([]byte, 100))
	for _, bc := range []struct {
		name string
		opts Options
		ttl  time.Duration
	}{
		{"plain", Options{}, 0},
		{"ttl", Options{}, time.Hour},
		{"bounded", Options{MaxBytes: 64 * 1024, Shards: 64}, 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			m := newTestMemory(b, bc.opts)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				m.Set(keys[i%benchKeys], v, bc.ttl)
				i++
			}
		})
	}
}
