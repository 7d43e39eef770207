package state

import (
	"fmt"
	"hash/maphash"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// DefaultShards is the shard count used when Options.Shards is 0.
	DefaultShards = 64
	// DefaultMaxValueBytes is the blob size limit used when
	// Options.MaxValueBytes is 0.
	DefaultMaxValueBytes = 64 << 20
	// DefaultJanitorInterval is how often the background janitor reclaims
	// expired entries when Options.JanitorInterval is 0.
	DefaultJanitorInterval = time.Second

	// EntryOverhead is the fixed number of bytes charged per entry in
	// Stats.Bytes and against MaxBytes, on top of the key and blob lengths.
	// It approximates the entry struct, its map slot and bookkeeping.
	EntryOverhead = 128

	maxShards = 1 << 16
	// drainPerWrite bounds how many expired entries one write reclaims
	// when the shard is not over budget, keeping write latency flat.
	drainPerWrite = 8
	// reapBatch bounds how long the janitor holds one shard's lock.
	reapBatch = 1024
)

// Options configures a [Memory] store. The zero value is a usable
// configuration: 64 shards, unbounded memory, 64 MiB blob limit.
type Options struct {
	// Shards is the number of independently locked shards. It is rounded
	// up to a power of two; 0 means DefaultShards.
	Shards int
	// MaxBytes bounds Stats().Bytes; 0 (or less) means unbounded. Each
	// shard gets MaxBytes/Shards. A write that would push a shard over its
	// budget first reclaims that shard's expired entries, then evicts its
	// least recently used entries (Get and Incr count as use) until the new
	// entry fits. An entry larger than a whole shard budget is refused with
	// an error wrapping ErrValueTooLarge rather than emptying the shard, so
	// the largest storable entry is MaxBytes/Shards, including the key and
	// EntryOverhead.
	MaxBytes int64
	// MaxValueBytes limits the length of one blob; 0 (or less) means
	// DefaultMaxValueBytes. The server exposes it as --state-max-value-bytes.
	MaxValueBytes int
	// JanitorInterval is how often a background goroutine reclaims expired
	// entries. 0 means DefaultJanitorInterval; a negative value disables the
	// janitor (expired entries are then reclaimed only by later writes to
	// their shard or when they are looked up).
	JanitorInterval time.Duration
	// Now returns the current time; nil means time.Now. Tests inject a fake
	// clock here. Times must lie within the range of time.Time.UnixNano.
	Now func() time.Time
	// OnChange, if set, is called with a key whenever its value may have
	// changed or it was removed: Set, Incr, Delete, expiry and eviction. It
	// runs with the key's shard locked, so it must be quick and must not
	// call the store.
	OnChange func(key string)
}

// Memory is the in-process [Store]: the key space is split over shards by a
// hash of the key, each shard guarded by its own mutex, so operations on
// different keys rarely contend and operations on one key are serialized.
//
// Each shard keeps a min-heap of expiry times (for TTL reclamation without
// scanning) and, when MaxBytes is set, an LRU list (for eviction); an
// unbounded store skips the LRU bookkeeping so reads write less memory.
//
// Create one with [NewMemory]; the zero value is not usable. Call Close when
// done to stop the background janitor (an unreachable Memory stops it too).
type Memory struct {
	c *core
}

var _ Store = (*Memory)(nil)

// core holds the store's state. It is separate from Memory so the janitor
// goroutine, which references only core, does not keep Memory reachable and
// a forgotten Close cannot leak the goroutine forever.
type core struct {
	shards   []shard
	mask     uint64
	seed     maphash.Seed
	maxValue int
	maxBytes int64
	budget   int64 // per shard; 0 = unbounded
	now      func() time.Time
	onChange func(key string) // never nil

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{} // closed when the janitor exits; nil if none
}

type shard struct {
	mu       sync.Mutex
	items    map[string]*entry
	lru      entry    // sentinel: lru.next is most recent, lru.prev least recent; kept only if budget > 0
	expiry   []*entry // min-heap on expireAt of entries that have a TTL
	budget   int64    // 0 = unbounded
	onChange func(key string)

	// Written only with mu held; read lock-free by Stats.
	keys      atomic.Int64
	bytes     atomic.Int64
	evictions atomic.Uint64
	expired   atomic.Uint64

	_ [64]byte // keep neighbouring shards' mutexes off one cache line
}

type entry struct {
	key        string
	val        Value
	expireAt   int64 // Unix nanoseconds; 0 = never
	size       int64
	heapIdx    int // index in shard.expiry, -1 if absent
	prev, next *entry
}

// NewMemory returns an empty in-process store configured by opts and starts
// its janitor goroutine (unless disabled).
func NewMemory(opts Options) *Memory {
	n := opts.Shards
	if n <= 0 {
		n = DefaultShards
	}
	n = min(n, maxShards)
	p := 1
	for p < n {
		p <<= 1
	}
	c := &core{
		shards:   make([]shard, p),
		mask:     uint64(p - 1),
		seed:     maphash.MakeSeed(),
		maxValue: opts.MaxValueBytes,
		now:      opts.Now,
		onChange: opts.OnChange,
		stop:     make(chan struct{}),
	}
	if c.onChange == nil {
		c.onChange = func(string) {}
	}
	if c.maxValue <= 0 {
		c.maxValue = DefaultMaxValueBytes
	}
	if c.now == nil {
		c.now = time.Now
	}
	if opts.MaxBytes > 0 {
		c.maxBytes = opts.MaxBytes
		c.budget = max(opts.MaxBytes/int64(p), 1)
	}
	for i := range c.shards {
		s := &c.shards[i]
		s.items = make(map[string]*entry)
		s.lru.next, s.lru.prev = &s.lru, &s.lru
		s.budget = c.budget
		s.onChange = c.onChange
	}
	m := &Memory{c: c}
	interval := opts.JanitorInterval
	if interval == 0 {
		interval = DefaultJanitorInterval
	}
	if interval > 0 {
		c.done = make(chan struct{})
		go c.janitor(interval)
		runtime.AddCleanup(m, func(c *core) { c.signalStop() }, c)
	}
	return m
}

// Close stops the background janitor and waits for it to exit. It is safe to
// call more than once. The store stays usable afterwards; expired entries are
// then reclaimed only lazily.
func (m *Memory) Close() {
	m.c.signalStop()
	if m.c.done != nil {
		<-m.c.done
	}
}

func (c *core) signalStop() { c.stopOnce.Do(func() { close(c.stop) }) }

func (c *core) janitor(interval time.Duration) {
	defer close(c.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			c.reapExpired()
		}
	}
}

// reapExpired reclaims every expired entry, shard by shard, holding each lock
// for at most reapBatch removals at a time.
func (c *core) reapExpired() {
	for i := range c.shards {
		s := &c.shards[i]
		for {
			now := lazyNow{fn: c.now}
			s.mu.Lock()
			n := s.drainExpired(&now, reapBatch)
			s.mu.Unlock()
			if n < reapBatch {
				break
			}
		}
	}
}

func (c *core) shardFor(key string) *shard {
	return &c.shards[maphash.String(c.seed, key)&c.mask]
}

// lazyNow reads the clock at most once, and only if an expiry check needs it,
// so operations on keys without TTL never pay for a clock read.
type lazyNow struct {
	fn  func() time.Time
	ns  int64
	set bool
}

func (l *lazyNow) get() int64 {
	if !l.set {
		l.ns = l.fn().UnixNano()
		l.set = true
	}
	return l.ns
}

// deadline returns now+ttl in Unix nanoseconds, saturating instead of
// overflowing and never returning the "no expiry" sentinel 0.
func deadline(now int64, ttl time.Duration) int64 {
	d := int64(ttl)
	var t int64
	if now > 0 && d > math.MaxInt64-now {
		t = math.MaxInt64
	} else {
		t = now + d
	}
	if t == 0 {
		t = 1
	}
	return t
}

func entrySize(key string, rawLen int) int64 {
	return int64(len(key)) + int64(rawLen) + EntryOverhead
}

func (c *core) budgetError(key string, rawLen int) error {
	return fmt.Errorf("%w: entry needs %d bytes (key %d + value %d + overhead %d) but each of the %d shards "+
		"holds at most %d bytes (MaxBytes %d / %d shards); refusing it rather than evicting the whole shard "+
		"(raise MaxBytes or lower the shard count)",
		ErrValueTooLarge, entrySize(key, rawLen), len(key), rawLen, EntryOverhead,
		len(c.shards), c.budget, c.maxBytes, len(c.shards))
}

// Get implements [Store].
func (m *Memory) Get(key string) (Value, bool) {
	v, _, ok := m.GetExpiry(key)
	return v, ok
}

// GetExpiry is Get that also returns when the key expires (the zero Time
// if it never does).
func (m *Memory) GetExpiry(key string) (Value, time.Time, bool) {
	c := m.c
	s := c.shardFor(key)
	now := lazyNow{fn: c.now}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.lookup(key, &now)
	if e == nil {
		return Value{}, time.Time{}, false
	}
	s.touch(e)
	var exp time.Time
	if e.expireAt != 0 {
		exp = time.Unix(0, e.expireAt)
	}
	return e.val, exp, true
}

// GetMulti implements [Store]. All keys are checked against one clock reading.
func (m *Memory) GetMulti(keys []string) ([]Value, []bool) {
	c := m.c
	values := make([]Value, len(keys))
	found := make([]bool, len(keys))
	now := lazyNow{fn: c.now}
	for i, key := range keys {
		s := c.shardFor(key)
		s.mu.Lock()
		values[i], found[i] = s.get(key, &now)
		s.mu.Unlock()
	}
	return values, found
}

// Set implements [Store]. Blob bytes are copied before the shard is locked.
// If v.IsInt, v.Raw is ignored.
func (m *Memory) Set(key string, v Value, ttl time.Duration) error {
	c := m.c
	rawLen := 0
	if !v.IsInt {
		rawLen = len(v.Raw)
		if rawLen > c.maxValue {
			return fmt.Errorf("%w: value is %d bytes, limit is %d bytes (raise it with --state-max-value-bytes)",
				ErrValueTooLarge, rawLen, c.maxValue)
		}
	}
	size := entrySize(key, rawLen)
	if c.budget > 0 && size > c.budget {
		return c.budgetError(key, rawLen)
	}
	stored := Value{Int: v.Int, IsInt: true}
	if !v.IsInt {
		stored = Value{Raw: append(make([]byte, 0, rawLen), v.Raw...)}
	}
	now := lazyNow{fn: c.now}
	var exp int64
	if ttl > 0 {
		exp = deadline(now.get(), ttl)
	}
	s := c.shardFor(key)
	s.mu.Lock()
	s.drainExpired(&now, drainPerWrite)
	s.put(key, stored, exp, size, &now)
	s.mu.Unlock()
	return nil
}

// Delete implements [Store].
func (m *Memory) Delete(key string) bool {
	c := m.c
	s := c.shardFor(key)
	now := lazyNow{fn: c.now}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.lookup(key, &now)
	if e == nil {
		return false
	}
	s.remove(e)
	return true
}

// Incr implements [Store].
func (m *Memory) Incr(key string, delta int64) (int64, error) {
	c := m.c
	s := c.shardFor(key)
	now := lazyNow{fn: c.now}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.lookup(key, &now); e != nil {
		if !e.val.IsInt {
			return 0, ErrNotInteger
		}
		n, ok := addInt64(e.val.Int, delta)
		if !ok {
			return 0, ErrOverflow
		}
		e.val.Int = n
		s.touch(e)
		s.onChange(key)
		return n, nil
	}
	size := entrySize(key, 0)
	if s.budget > 0 && size > s.budget {
		return 0, c.budgetError(key, 0)
	}
	s.drainExpired(&now, drainPerWrite)
	s.put(key, IntValue(delta), 0, size, &now)
	return delta, nil
}

func addInt64(a, b int64) (int64, bool) {
	if (b > 0 && a > math.MaxInt64-b) || (b < 0 && a < math.MinInt64-b) {
		return 0, false
	}
	return a + b, true
}

// Keys implements [Store].
func (m *Memory) Keys(prefix string) []string {
	c := m.c
	now := lazyNow{fn: c.now}
	keys := []string{}
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for k, e := range s.items {
			if strings.HasPrefix(k, prefix) && !e.expiredAt(&now) {
				keys = append(keys, k)
			}
		}
		s.mu.Unlock()
	}
	slices.Sort(keys)
	return keys
}

// Stats implements [Store]. It sums per-shard atomic counters.
func (m *Memory) Stats() Stats {
	var st Stats
	for i := range m.c.shards {
		s := &m.c.shards[i]
		st.Keys += int(s.keys.Load())
		st.Bytes += s.bytes.Load()
		st.Evictions += s.evictions.Load()
		st.Expired += s.expired.Load()
	}
	return st
}

// ---- shard internals; all require s.mu held ----

func (e *entry) expiredAt(now *lazyNow) bool {
	return e.expireAt != 0 && now.get() >= e.expireAt
}

// lookup returns the live entry for key, reclaiming it if it has expired.
func (s *shard) lookup(key string, now *lazyNow) *entry {
	e := s.items[key]
	if e == nil {
		return nil
	}
	if e.expiredAt(now) {
		s.remove(e)
		s.expired.Add(1)
		return nil
	}
	return e
}

func (s *shard) get(key string, now *lazyNow) (Value, bool) {
	e := s.lookup(key, now)
	if e == nil {
		return Value{}, false
	}
	s.touch(e)
	return e.val, true
}

// put stores val under key with the given expiry (0 = none) and entry size,
// making room under the shard budget first. The caller has checked that size
// fits the budget.
func (s *shard) put(key string, val Value, exp, size int64, now *lazyNow) {
	e := s.lookup(key, now)
	var old int64
	if e != nil {
		old = e.size
		unlink(e) // keep it off the LRU list so eviction cannot pick it
	}
	if s.budget > 0 && s.bytes.Load()+size-old > s.budget {
		s.drainExpired(now, -1)
		for s.bytes.Load()+size-old > s.budget && s.lru.prev != &s.lru {
			s.remove(s.lru.prev)
			s.evictions.Add(1)
		}
	}
	if e == nil {
		e = &entry{key: key, heapIdx: -1}
		s.items[key] = e
		s.keys.Add(1)
	}
	e.val = val
	e.size = size
	s.bytes.Add(size - old)
	s.setExpiry(e, exp)
	s.onChange(key)
	if s.budget > 0 {
		s.pushFront(e)
	}
}

// remove drops e from the map, the LRU list, the expiry heap and the counters.
func (s *shard) remove(e *entry) {
	s.onChange(e.key)
	delete(s.items, e.key)
	unlink(e)
	if e.heapIdx >= 0 {
		s.heapRemove(e.heapIdx)
	}
	s.keys.Add(-1)
	s.bytes.Add(-e.size)
}

// drainExpired reclaims up to limit expired entries (all if limit < 0) in
// expiry order and returns how many it reclaimed.
func (s *shard) drainExpired(now *lazyNow, limit int) int {
	n := 0
	for len(s.expiry) > 0 && (limit < 0 || n < limit) && s.expiry[0].expireAt <= now.get() {
		s.remove(s.expiry[0])
		s.expired.Add(1)
		n++
	}
	return n
}

// LRU list.

func unlink(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
		e.next.prev = e.prev
		e.prev, e.next = nil, nil
	}
}

func (s *shard) pushFront(e *entry) {
	e.prev = &s.lru
	e.next = s.lru.next
	s.lru.next.prev = e
	s.lru.next = e
}

func (s *shard) touch(e *entry) {
	if s.budget > 0 && s.lru.next != e {
		unlink(e)
		s.pushFront(e)
	}
}

// Expiry min-heap. Entries record their index, so a key re-Set with another
// TTL is fixed in place and a removed key leaves no stale heap element.

func (s *shard) setExpiry(e *entry, exp int64) {
	e.expireAt = exp
	switch {
	case exp == 0 && e.heapIdx >= 0:
		s.heapRemove(e.heapIdx)
	case exp == 0:
	case e.heapIdx >= 0:
		s.heapFix(e.heapIdx)
	default:
		e.heapIdx = len(s.expiry)
		s.expiry = append(s.expiry, e)
		s.siftUp(e.heapIdx)
	}
}

func (s *shard) heapRemove(i int) {
	h := s.expiry
	last := len(h) - 1
	removed := h[i]
	if i != last {
		h[i] = h[last]
		h[i].heapIdx = i
	}
	h[last] = nil
	s.expiry = h[:last]
	removed.heapIdx = -1
	if i != last {
		s.heapFix(i)
	}
	if cap(s.expiry) > 64 && len(s.expiry) < cap(s.expiry)/4 {
		s.expiry = slices.Clip(append([]*entry(nil), s.expiry...))
	}
}

func (s *shard) heapFix(i int) {
	if !s.siftDown(i) {
		s.siftUp(i)
	}
}

func (s *shard) swap(i, j int) {
	h := s.expiry
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = i
	h[j].heapIdx = j
}

func (s *shard) siftUp(i int) {
	h := s.expiry
	for i > 0 {
		p := (i - 1) / 2
		if h[p].expireAt <= h[i].expireAt {
			break
		}
		s.swap(i, p)
		i = p
	}
}

// siftDown reports whether it moved the element.
func (s *shard) siftDown(i0 int) bool {
	h := s.expiry
	i := i0
	for {
		l := 2*i + 1
		if l >= len(h) {
			break
		}
		j := l
		if r := l + 1; r < len(h) && h[r].expireAt < h[l].expireAt {
			j = r
		}
		if h[i].expireAt <= h[j].expireAt {
			break
		}
		s.swap(i, j)
		i = j
	}
	return i > i0
}
