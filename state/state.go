// Package state is hornbeam's shared key-value store: the one place where
// Python code running in different worker processes can share data.
//
// The store lives in the Go server process. Python workers reach it over a
// socket; Go code calls it directly. Keys are Go strings holding arbitrary
// bytes (the empty key is allowed). A value is either an opaque blob — in
// practice CPython marshal bytes, produced and read only by Python — or a
// native 64-bit integer counter, so that increments are atomic across all
// workers without a read-modify-write round trip.
//
// The server talks to the store through the [Store] interface so that a
// distributed engine can replace the in-process one later. [Memory] is the
// in-process implementation: sharded, with per-key TTLs and an optional
// memory bound enforced by least-recently-used eviction.
package state

import (
	"errors"
	"time"
)

// Value is what the store holds: either an integer counter or an opaque blob.
//
// When IsInt is true the value is Int and Raw is nil. Otherwise the value is
// the bytes in Raw (which may be empty) and Int is 0.
type Value struct {
	Int   int64
	Raw   []byte // nil when IsInt
	IsInt bool
}

// IntValue returns an integer counter value.
func IntValue(n int64) Value { return Value{Int: n, IsInt: true} }

// RawValue returns an opaque blob value holding b. The store copies b on
// Set, so the caller may reuse b afterwards.
func RawValue(b []byte) Value { return Value{Raw: b} }

// Store is the interface the server uses to reach the shared state. [Memory]
// implements it; a distributed engine may implement it later.
//
// All methods are safe for concurrent use. An expired key behaves exactly like
// an absent key in every method.
type Store interface {
	// Get returns the live value stored under key. For a blob the returned
	// Raw slice is shared with the store and must not be modified; it is
	// never modified by the store either, so it stays valid after later
	// writes to the key.
	Get(key string) (Value, bool)

	// GetMulti looks up several keys at once. The two results have the same
	// length as keys; found[i] reports whether values[i] is set.
	GetMulti(keys []string) (values []Value, found []bool)

	// Set stores v under key, replacing both the previous value and the
	// previous TTL. ttl <= 0 means the key never expires. Blob bytes are
	// copied. It fails with an error wrapping [ErrValueTooLarge] when the
	// value exceeds the store's size limits; nothing changes then.
	Set(key string, v Value, ttl time.Duration) error

	// Delete removes key and reports whether a live key existed.
	Delete(key string) bool

	// Incr atomically adds delta (which may be negative) to the integer
	// stored under key and returns the new value. An absent or expired key
	// starts at 0 and is created without a TTL; an existing key keeps its
	// TTL. It fails with [ErrNotInteger] if the key holds a blob and with
	// [ErrOverflow] if the result would not fit in an int64; nothing changes
	// on error.
	Incr(key string, delta int64) (int64, error)

	// Keys returns the live keys that start with prefix (byte-wise), sorted.
	// An empty prefix matches every key.
	Keys(prefix string) []string

	// Stats returns current counters. It is cheap: no entries are scanned.
	Stats() Stats
}

// Stats describes a store's contents and history.
type Stats struct {
	// Keys is the number of entries held. It may include expired entries
	// whose memory has not been reclaimed yet (at most one janitor interval).
	Keys int
	// Bytes approximates the memory held by entries: for each entry, the
	// key length plus the blob length plus a fixed per-entry overhead.
	Bytes int64
	// Evictions counts entries dropped to stay under the memory bound.
	Evictions uint64
	// Expired counts expired entries whose memory was reclaimed.
	Expired uint64
}

var (
	// ErrNotInteger is returned by Incr when the key holds a blob.
	ErrNotInteger = errors.New("state: value is not an integer")
	// ErrOverflow is returned by Incr when the result would overflow int64.
	ErrOverflow = errors.New("state: increment would overflow int64")
	// ErrValueTooLarge is wrapped by the error Set (or Incr, for a huge key)
	// returns when an entry exceeds the store's size limits. The wrapping
	// error says which limit, the sizes involved and how to raise it.
	ErrValueTooLarge = errors.New("state: value too large")
)
