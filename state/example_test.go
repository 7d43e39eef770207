package state_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/hornbeam-go/hornbeam/state"
)

func Example() {
	m := state.NewMemory(state.Options{})
	defer m.Close()

	// Blobs are opaque bytes (in hornbeam, CPython marshal data).
	if err := m.Set("greeting", state.RawValue([]byte("hello")), 0); err != nil {
		panic(err)
	}
	v, ok := m.Get("greeting")
	fmt.Println(string(v.Raw), ok)

	// Counters are native integers, incremented atomically.
	m.Incr("hits", 1)
	n, _ := m.Incr("hits", 2)
	fmt.Println(n)

	_, err := m.Incr("greeting", 1)
	fmt.Println(errors.Is(err, state.ErrNotInteger))
	// Output:
	// hello true
	// 3
	// true
}

func ExampleMemory_Set_ttl() {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	m := state.NewMemory(state.Options{
		Now:             func() time.Time { return now },
		JanitorInterval: -1, // no background goroutine reads the unsynchronized fake clock
	})
	defer m.Close()

	m.Set("session", state.RawValue([]byte("data")), time.Minute)
	m.Incr("session:views", 1)

	now = now.Add(59 * time.Second)
	_, ok := m.Get("session")
	fmt.Println("after 59s:", ok)

	now = now.Add(time.Second)
	_, ok = m.Get("session")
	fmt.Println("after 60s:", ok)
	fmt.Println(m.Keys("session"))
	// Output:
	// after 59s: true
	// after 60s: false
	// [session:views]
}

func ExampleMemory_Keys() {
	m := state.NewMemory(state.Options{})
	defer m.Close()
	for _, k := range []string{"user:2", "user:1", "cart:9"} {
		m.Set(k, state.IntValue(0), 0)
	}
	fmt.Println(m.Keys("user:"))
	// Output: [user:1 user:2]
}

func ExampleMemory_GetMulti() {
	m := state.NewMemory(state.Options{})
	defer m.Close()
	m.Set("a", state.IntValue(1), 0)
	m.Set("c", state.IntValue(3), 0)
	values, found := m.GetMulti([]string{"a", "b", "c"})
	for i := range values {
		fmt.Println(values[i].Int, found[i])
	}
	// Output:
	// 1 true
	// 0 false
	// 3 true
}

func ExampleOptions_maxBytes() {
	// One shard so the eviction order is easy to follow.
	entry := int64(len("a") + 100 + state.EntryOverhead)
	m := state.NewMemory(state.Options{Shards: 1, MaxBytes: 2 * entry})
	defer m.Close()

	blob := state.RawValue(make([]byte, 100))
	m.Set("a", blob, 0)
	m.Set("b", blob, 0)
	m.Get("a")          // a is now more recently used than b
	m.Set("c", blob, 0) // evicts b

	fmt.Println(m.Keys(""), m.Stats().Evictions)

	err := m.Set("d", state.RawValue(make([]byte, 1000)), 0)
	fmt.Println(errors.Is(err, state.ErrValueTooLarge))
	// Output:
	// [a c] 1
	// true
}

func ExampleStore() {
	// The server depends on the interface, not on Memory.
	var s state.Store = state.NewMemory(state.Options{})
	defer s.(*state.Memory).Close()

	s.Set("k", state.IntValue(41), 0)
	n, _ := s.Incr("k", 1)
	st := s.Stats()
	fmt.Println(n, st.Keys)
	// Output: 42 1
}
