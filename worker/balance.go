package worker

import (
	"fmt"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The balance table spreads connections over the workers when clients
// hold few of them (a proxy's keep-alive pool): every worker is woken for
// each new connection and the first to call accept(2) takes it, which is
// most often one already awake, that is a busy one. So each worker
// publishes how many connections it holds, in shared memory the master
// made (Config.Balance, entry Config.Slot), and one that holds more than
// some other worker does not accept until that is no longer so: the
// least loaded workers take the new connections.
//
// An entry is the worker's connections + 1, or 0 for a worker that does
// not accept (not started, draining, gone: the master clears the entry of
// a worker that exits). A worker waits at most balanceMaxWait, so that a
// stale entry can only cost balance, never stop the accepting.
const (
	BalanceEntries = 1024 // entries in the table (int32 each); slots beyond are not balanced
	balancePoll    = time.Millisecond
	balanceMaxWait = 50 * time.Millisecond
)

type balance struct {
	table []int32 // the mapped table
	slot  int
}

// openBalance maps the table at path (the master's, through /proc); nil
// when there is none or it cannot be opened (a worker that switched user
// may not open the master's descriptors): then the fixed backoff applies.
func openBalance(path string, slot int) (*balance, error) {
	if path == "" || slot < 0 || slot >= BalanceEntries {
		return nil, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("balance table: %w", err)
	}
	defer f.Close()
	b, err := unix.Mmap(int(f.Fd()), 0, BalanceEntries*4, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("balance table: %w", err)
	}
	return &balance{table: unsafe.Slice((*int32)(unsafe.Pointer(&b[0])), BalanceEntries), slot: slot}, nil
}

// set publishes that the worker holds n connections and accepts more.
func (b *balance) set(n int64) {
	if b != nil {
		atomic.StoreInt32(&b.table[b.slot], int32(min(n, 1<<30))+1)
	}
}

// clear publishes that the worker no longer accepts.
func (b *balance) clear() {
	if b != nil {
		atomic.StoreInt32(&b.table[b.slot], 0)
	}
}

// busier reports whether another accepting worker holds fewer than n
// connections.
func (b *balance) busier(n int64) bool {
	for i := range b.table {
		if i == b.slot {
			continue
		}
		if v := atomic.LoadInt32(&b.table[i]); v != 0 && int64(v-1) < n {
			return true
		}
	}
	return false
}

// wait returns once no other accepting worker holds fewer connections
// than open() (at most balanceMaxWait).
func (b *balance) wait(open func() int64) {
	for end := time.Now().Add(balanceMaxWait); b.busier(open()) && time.Now().Before(end); {
		time.Sleep(balancePoll)
	}
}
