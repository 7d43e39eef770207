package asgi

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hornbeam-go/hornbeam/httpguard"
)

// An accepted WebSocket's bytes pass through a wsIO, the net.Conn that
// coder/websocket gets from the hijack (wsHijack), so that an idle socket
// holds no buffer and no goroutine:
//
//   - coder reads and writes through bufio buffers of 16 bytes (the
//     smallest bufio allows) instead of net/http's 4 KiB pair; the wsIO
//     under them takes a 4 KiB buffer from ioPool while bytes are in
//     flight and gives it back once they are through.
//   - Reads stop at the end of each frame (the wsIO follows the client's
//     framing), so coder's 16 bytes never hold the start of the next frame:
//     when a message has been read and the wsIO has nothing buffered,
//     nothing is buffered anywhere. There, with idleOK set, a read that
//     would wait returns errIdle instead (a non-blocking read of the
//     descriptor), coder's Read fails at a message boundary (its state is
//     clean: the next Read starts a new message) and the session parks
//     the socket in the poller (wspoll.go) without a goroutine.
//   - Writes are held until the frame they belong to is complete, then
//     written with one system call: coder's 16-byte buffer would otherwise
//     split each message into a header write and a payload write.

// lingerFor is how long a socket that has just passed a message to the
// app waits for the next one (a goroutine blocked in Read, in Go's
// netpoller) before it parks: a busy socket (an echo, a game) does not go
// through the poller for every message, which cost 12% more server CPU
// per message on the echo benchmark (77.8 against 69.7 us; 65.9 with
// this linger); an idle one parks 50 ms after its last message, so a
// burst of sockets that each send one message holds few stacks at once.
const lingerFor = 50 * time.Millisecond

// ioBufSize is the buffer a socket holds while bytes are in flight.
const ioBufSize = 4096

var ioPool = sync.Pool{New: func() any { b := make([]byte, ioBufSize); return &b }}

// errIdle: nothing waits to be read at a message boundary (wsIO.idleOK).
var errIdle = errors.New("asgi: WebSocket idle")

type wsIO struct {
	net.Conn                 // writes, Close, addresses: the TCP connection itself when raw != nil
	rd       io.Reader       // where reads wait
	raw      syscall.RawConn // the descriptor, for non-blocking reads and the poller; nil: never idle
	idleOK   atomic.Bool     // a read at a message boundary with nothing waiting returns errIdle
	linger   atomic.Bool     // the next such read waits up to lingerFor first (Linger)

	rmu        sync.Mutex
	rbuf       *[]byte // from ioPool while it holds bytes not yet read
	rpos, rend int
	in         frameTracker // the client's frames (masked)

	wmu  sync.Mutex
	wbuf *[]byte // from ioPool while it holds the start of a frame
	wn   int
	out  frameTracker // our frames
}

// newWSIO wraps a hijacked connection. Only a plain TCP or Unix socket,
// possibly under httpguard's wrapper (which inspects reads, buffers
// nothing, and has no use after the upgrade), can be read around the
// wrappers and parked; TLS and PROXY protocol connections buffer bytes of
// their own, so their sockets keep a goroutine waiting in Read.
func newWSIO(c net.Conn) *wsIO {
	w := &wsIO{Conn: c, rd: c}
	inner := c
	if g, ok := inner.(*httpguard.Conn); ok {
		inner = g.NetConn()
	}
	switch inner.(type) {
	case *net.TCPConn, *net.UnixConn:
		if raw, err := inner.(syscall.Conn).SyscallConn(); err == nil {
			w.Conn, w.rd, w.raw = inner, inner, raw
		}
	}
	return w
}

// Read returns bytes of one frame at most (see wsIO).
func (w *wsIO) Read(p []byte) (int, error) {
	w.rmu.Lock()
	defer w.rmu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	if w.rpos == w.rend {
		switch {
		case w.raw != nil && w.idleOK.Load() && w.in.atMessageBoundary():
			var err error
			if w.linger.Swap(false) {
				err = w.fillLingering()
			} else {
				err = w.tryFill()
			}
			if err != nil {
				return 0, err
			}
		case w.in.inPayload && len(p) >= ioBufSize:
			// A large payload goes straight into coder's buffer.
			if uint64(len(p)) > w.in.left {
				p = p[:w.in.left]
			}
			n, err := w.rd.Read(p)
			w.in.advance(p[:n])
			return n, err
		default:
			if err := w.fill(); err != nil {
				return 0, err
			}
		}
	}
	buf := (*w.rbuf)[w.rpos:w.rend]
	n := copy(p[:min(len(p), w.in.room(buf))], buf)
	w.in.advance(p[:n])
	w.rpos += n
	if w.rpos == w.rend {
		w.releaseRead()
	}
	return n, nil
}

// fill waits for bytes (rmu held, nothing buffered).
func (w *wsIO) fill() error {
	if w.rbuf == nil {
		w.rbuf = ioPool.Get().(*[]byte)
	}
	n, err := w.rd.Read(*w.rbuf)
	if n > 0 {
		w.rpos, w.rend = 0, n
		return nil // an error comes again with the next read
	}
	w.releaseRead()
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// fillLingering waits for the next message up to lingerFor, then gives
// errIdle (the session parks the socket).
func (w *wsIO) fillLingering() error {
	c := w.rd.(net.Conn)
	if err := c.SetReadDeadline(time.Now().Add(lingerFor)); err != nil {
		return err
	}
	err := w.fill()
	if derr := c.SetReadDeadline(time.Time{}); err == nil {
		err = derr
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return errIdle
	}
	return err
}

// tryFill reads what is there without waiting: errIdle when nothing is.
func (w *wsIO) tryFill() error {
	if w.rbuf == nil {
		w.rbuf = ioPool.Get().(*[]byte)
	}
	var n int
	var rerr error
	err := w.raw.Read(func(fd uintptr) bool {
		for {
			n, rerr = unix.Read(int(fd), *w.rbuf)
			if rerr != unix.EINTR {
				return true // one attempt: never wait here
			}
		}
	})
	switch {
	case err != nil: // closed
	case rerr == unix.EAGAIN:
		err = errIdle
	case rerr != nil:
		err = &net.OpError{Op: "read", Net: "tcp", Err: rerr}
	case n == 0:
		err = io.EOF
	default:
		w.rpos, w.rend = 0, n
		return nil
	}
	w.releaseRead()
	return err
}

func (w *wsIO) releaseRead() {
	if w.rbuf != nil && len(*w.rbuf) == ioBufSize {
		ioPool.Put(w.rbuf)
	}
	w.rbuf = nil
	w.rpos, w.rend = 0, 0
}

// Linger makes the next read at a message boundary wait up to lingerFor
// (read, after a message).
func (w *wsIO) Linger() { w.linger.Store(true) }

// preload takes the bytes net/http read past the upgrade request (at most
// its 4 KiB buffer).
func (w *wsIO) preload(b []byte) {
	w.rmu.Lock()
	defer w.rmu.Unlock()
	if len(b) <= ioBufSize {
		w.rbuf = ioPool.Get().(*[]byte)
	} else {
		big := make([]byte, len(b))
		w.rbuf = &big
	}
	w.rpos, w.rend = 0, copy(*w.rbuf, b)
}

// Write holds the start of a frame and writes it with its end.
func (w *wsIO) Write(p []byte) (int, error) {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	w.out.advance(p)
	if w.wn+len(p) <= ioBufSize {
		if w.wbuf == nil {
			w.wbuf = ioPool.Get().(*[]byte)
		}
		w.wn += copy((*w.wbuf)[w.wn:], p)
		if !w.out.atFrameBoundary() {
			return len(p), nil // the rest of the frame comes with the next write
		}
		_, err := w.Conn.Write((*w.wbuf)[:w.wn])
		w.releaseWrite()
		if err != nil {
			return 0, err
		}
		return len(p), nil
	}
	if w.wn == 0 {
		return w.Conn.Write(p)
	}
	held := w.wn
	bufs := net.Buffers{(*w.wbuf)[:held], p} // writev on a TCP connection
	n, err := bufs.WriteTo(w.Conn)
	w.releaseWrite()
	return max(0, int(n)-held), err
}

func (w *wsIO) releaseWrite() {
	if w.wbuf != nil {
		ioPool.Put(w.wbuf)
		w.wbuf = nil
	}
	w.wn = 0
}

// frameTracker follows WebSocket framing (RFC 6455 5.2) over a stream of
// bytes: where the current frame ends, and whether a fragmented message is
// in progress. It only counts; coder/websocket checks the frames.
type frameTracker struct {
	hdr       [14]byte
	got       int    // header bytes of the current frame seen
	need      int    // its header's length, once its second byte is seen
	left      uint64 // payload bytes of the current frame not yet seen
	inPayload bool
	inMsg     bool // a data frame without FIN was seen: the message goes on
}

// headerLen is the length of a header whose first two bytes are b0, b1.
func headerLen(b1 byte) int {
	n := 2
	switch b1 & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&0x80 != 0 {
		n += 4 // the mask
	}
	return n
}

// room is how many of the next bytes belong to the current frame, given
// the bytes buffered (which may show the whole header): at least 1.
func (f *frameTracker) room(buf []byte) int {
	if f.inPayload {
		return int(min(f.left, math.MaxInt32))
	}
	if f.got == 0 && len(buf) >= 2 {
		if n := headerLen(buf[1]); len(buf) >= n {
			return n + int(min(payloadLen(buf[1], buf[2:]), math.MaxInt32-14))
		}
	}
	if f.got < 2 {
		return 2 - f.got
	}
	return f.need - f.got
}

// payloadLen reads the payload length from a header's second byte and the
// bytes after it (which hold the extended length, if any).
func payloadLen(b1 byte, ext []byte) uint64 {
	switch l := b1 & 0x7f; l {
	case 126:
		return uint64(binary.BigEndian.Uint16(ext))
	case 127:
		return binary.BigEndian.Uint64(ext)
	default:
		return uint64(l)
	}
}

func (f *frameTracker) advance(b []byte) {
	for len(b) > 0 {
		if f.inPayload {
			n := min(uint64(len(b)), f.left)
			f.left -= n
			b = b[n:]
			f.inPayload = f.left > 0
			continue
		}
		f.hdr[f.got] = b[0]
		f.got++
		b = b[1:]
		if f.got == 2 {
			f.need = headerLen(f.hdr[1])
		}
		if f.got >= 2 && f.got == f.need {
			if op := f.hdr[0] & 0x0f; op < 8 { // a data or continuation frame
				f.inMsg = f.hdr[0]&0x80 == 0
			}
			f.left = payloadLen(f.hdr[1], f.hdr[2:])
			f.inPayload = f.left > 0
			f.got = 0
		}
	}
}

func (f *frameTracker) atFrameBoundary() bool { return !f.inPayload && f.got == 0 }

func (f *frameTracker) atMessageBoundary() bool { return f.atFrameBoundary() && !f.inMsg }

// wsHijack is the ResponseWriter coder/websocket's Accept gets: its Hijack
// hands coder a wsIO and 16-byte bufio buffers.
type wsHijack struct {
	http.ResponseWriter
	io *wsIO // after Hijack
}

func (h *wsHijack) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, fmt.Errorf("asgi: WebSocket hijack: %w", err)
	}
	w := newWSIO(conn)
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n) // the client wrote right after the upgrade request
		w.preload(b)
	}
	h.io = w
	return w, bufio.NewReadWriter(bufio.NewReaderSize(w, 16), bufio.NewWriterSize(w, 16)), nil
}

func (h *wsHijack) Unwrap() http.ResponseWriter { return h.ResponseWriter }
