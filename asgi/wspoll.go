package asgi

import (
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// poller waits, with one epoll instance and one goroutine for all of a
// Server's sockets, for bytes on the idle WebSockets: a parked socket has
// no goroutine (a goroutine waiting in Read holds a stack of 8 to 16 KiB).
// Each socket is registered one-shot: an event disarms it until the
// session parks it again (wsSession.park), so an event always finds the
// socket parked, and a socket is read by one goroutine at a time.
//
// The epoll descriptor is itself in Go's netpoller (it is readable when
// events are ready), so its goroutine waits there, not in a blocked
// system call.
type poller struct {
	f  *os.File
	rc syscall.RawConn

	mu    sync.Mutex
	socks map[uint64]*wsSession
	next  uint64
}

func newPoller() (*poller, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("asgi: epoll: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("asgi: epoll: %w", err)
	}
	f := os.NewFile(uintptr(fd), "epoll")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("asgi: epoll: %w", err)
	}
	p := &poller{f: f, rc: rc, socks: map[uint64]*wsSession{}}
	go p.run()
	return p, nil
}

func (p *poller) run() {
	var evs [256]unix.EpollEvent
	for {
		n := 0
		err := p.rc.Read(func(fd uintptr) bool {
			var werr error
			n, werr = unix.EpollWait(int(fd), evs[:], 0)
			return n > 0 || (werr != nil && werr != unix.EINTR)
		})
		if err != nil {
			return // closed
		}
		for _, ev := range evs[:max(n, 0)] {
			id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			p.mu.Lock()
			ws := p.socks[id]
			p.mu.Unlock()
			if ws != nil {
				ws.readable()
			}
		}
	}
}

// add makes ws known to the poller; arm then waits for its bytes.
func (p *poller) add(ws *wsSession) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next++
	p.socks[p.next] = ws
	return p.next
}

// arm waits (once) for the socket to be readable, or closed by the
// client. first: not registered yet.
func (p *poller) arm(raw syscall.RawConn, id uint64, first bool) error {
	ev := unix.EpollEvent{
		Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT,
		Fd:     int32(uint32(id)),
		Pad:    int32(uint32(id >> 32)),
	}
	op := unix.EPOLL_CTL_MOD
	if first {
		op = unix.EPOLL_CTL_ADD
	}
	var cerr error
	// Inside Control the socket's descriptor stays open (its number cannot
	// be reused meanwhile); inside the other Control, the epoll one.
	err := p.rc.Control(func(epfd uintptr) {
		err := raw.Control(func(fd uintptr) { cerr = unix.EpollCtl(int(epfd), op, int(fd), &ev) })
		if cerr == nil {
			cerr = err
		}
	})
	if err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("asgi: epoll_ctl: %w", err)
	}
	return nil
}

// remove forgets a session; its socket leaves the epoll set (a closed
// descriptor has left it already).
func (p *poller) remove(raw syscall.RawConn, id uint64) {
	p.mu.Lock()
	delete(p.socks, id)
	p.mu.Unlock()
	p.rc.Control(func(epfd uintptr) {
		raw.Control(func(fd uintptr) { unix.EpollCtl(int(epfd), unix.EPOLL_CTL_DEL, int(fd), nil) })
	})
}

func (p *poller) close() { p.f.Close() }
