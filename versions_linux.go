package hornbeam

import (
	"fmt"
	"hash/crc32"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// versions is the state's change table, shared with the workers: a memfd of
// versionSlots uint32 counters that they map read-only. A key's slot is the
// CRC-32 (IEEE) of its store key, modulo versionSlots; the slot's counter
// goes up whenever a key in it changes (Set, Incr, Delete, expiry).
//
// A worker keeps the results of state_get with the slot's counter as it was
// read before the value, and serves the key again from memory while the
// counter has not moved and the TTL has not run out (python/hornbeam/_state.py).
// A change is counted before the call that made it returns, so a worker
// never sees an older value after a newer one was acknowledged anywhere.
// Keys sharing a slot only cost each other a cache miss.
type versions struct {
	file *os.File
	mu   sync.RWMutex // guards mem against close: the store outlives Stop
	mem  []byte       // nil once closed
}

const versionSlots = 1 << 16

func newVersions() (*versions, error) {
	fd, err := unix.MemfdCreate("hornbeam-state-versions", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("state change table: %w", err)
	}
	f := os.NewFile(uintptr(fd), "hornbeam-state-versions")
	if err := f.Truncate(versionSlots * 4); err != nil {
		f.Close()
		return nil, fmt.Errorf("state change table: %w", err)
	}
	mem, err := unix.Mmap(fd, 0, versionSlots*4, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("state change table: %w", err)
	}
	return &versions{file: f, mem: mem}, nil
}

func (v *versions) slot(key string) *uint32 {
	i := crc32.ChecksumIEEE(unsafe.Slice(unsafe.StringData(key), len(key))) % versionSlots
	return (*uint32)(unsafe.Pointer(&v.mem[i*4]))
}

// changed counts a change to key (state.Options.OnChange).
func (v *versions) changed(key string) {
	v.mu.RLock()
	if v.mem != nil {
		atomic.AddUint32(v.slot(key), 1)
	}
	v.mu.RUnlock()
}

// load returns key's slot counter.
func (v *versions) load(key string) uint32 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.mem == nil {
		return 0
	}
	return atomic.LoadUint32(v.slot(key))
}

func (v *versions) close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.mem != nil {
		unix.Munmap(v.mem)
		v.mem = nil
		v.file.Close()
	}
}

// memfd returns an anonymous shared memory file of size bytes (the
// workers' balance table).
func memfd(name string, size int64) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	if err := f.Truncate(size); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return f, nil
}
