// Package wire is the framing between the hornbeam server and its Python
// workers. It is the Go half of the protocol; the Python half is
// python/hornbeam/_wire.py. Both follow this description, which is the only
// one.
//
// # Transport
//
// Each worker owns two Unix stream sockets (socketpairs; the worker inherits
// its ends as file descriptors 3 and 4):
//
//   - the request socket (fd 3) is multiplexed: a worker may hold several
//     requests at once (threads), and the server may queue a request to a
//     worker before the worker has finished the previous one;
//   - the state socket (fd 4) carries only StateCall frames from the worker
//     and one StateReply for each, one call at a time (the worker serialises
//     its threads' calls). The server serves it with blocking reads on a
//     thread of its own (see CallConn), so a state call never waits behind
//     request traffic and costs one direct wake-up each way.
//
// A third descriptor, fd 5, is passed when the environment variable
// HORNBEAM_STATE_VERSIONS says so: the state change table, shared memory
// the worker maps read-only to tell whether a state_get result it kept is
// still current (see package hornbeam's versions_linux.go and the getv
// state operation).
//
// A worker to be pinned to a CPU (--cpu-affinity) is told which one in the
// environment variable HORNBEAM_CPU, or in the Fork frame when the zygote
// forks it, and pins itself before it runs anything else.
//
// # Frames
//
// Every message is a frame: a 9-byte header followed by a payload.
//
//	offset 0  uint32 big-endian  payload length (at most MaxPayload)
//	offset 4  uint8              frame type (the Type constants below)
//	offset 5  uint32 big-endian  id: the request id, or the state call id
//	offset 9  payload
//
// A frame may carry file descriptors as SCM_RIGHTS ancillary data, sent
// with the frame's first byte (RequestFD and File carry one, Fork three,
// ForkEmbedded four). The
// receiver keeps a FIFO of received descriptors; a frame that carries some
// takes the oldest.
//
// Structured payloads are CPython marshal data (see package pymarshal): the
// server writes them with pymarshal, the worker reads them with marshal.loads,
// and the worker writes with marshal.dumps(obj, 2).
//
// # Server to worker
//
//	Request    id=request  payload: environ dict (str -> str), plus
//	                       "hornbeam.body": bytes (the whole body, when small)
//	RequestFD  id=request  same, and the body is in the attached descriptor
//	                       (an unlinked temporary file, positioned at 0)
//	StateReply id=call     state socket only. payload: (True, value) or
//	                       (False, "Error", "message")
//	Shutdown   id=0        finish the requests held, then exit 0
//	Fork       id=fork     to the zygote (--preload) only: fork a worker.
//	                       payload: int CPU to pin it to, or None. Three
//	                       descriptors are attached: the new worker's request
//	                       socket, its state socket, then the pipe for its
//	                       stdout and stderr
//	ForkEmbedded id=fork   to the zygote of hosted embedded workers (--preload)
//	                       only: fork an embedded worker (see below). payload:
//	                       str, its environment: KEY=VALUE entries separated
//	                       by NUL (its configuration names the CPU to pin
//	                       it to). Four descriptors: the
//	                       worker's control socket, its state socket, the pipe
//	                       for its output, then its access log pipe
//
// # Worker to server
//
//	Ready      id=0        payload: dict (pid, python version); the app imported
//	Start      id=request  payload: (status str, [(name str, value str), ...])
//	Body       id=request  payload: raw bytes of the response body
//	File       id=request  payload: int length (-1: to end of file); the file
//	                       descriptor is attached, read from its current offset
//	End        id=request  empty; the response is complete
//	Error      id=request  payload: str message; the app failed. Before Start
//	                       the client gets 500; after it, the connection is cut
//	Hints      id=request  payload: [(name, value), ...] for a 103 Early Hints
//	StateCall  id=call     state socket only. payload: (op str, args...) — see
//	                       package hornbeam's state bridge for the operations
//	Forked     id=fork     from the zygote: payload int pid of the new worker
//	ChildExit  id=0        from the zygote: payload (pid, wait status) of a
//	                       worker it forked that has exited
//
// # Embedded workers
//
// In the embedded mode (package worker) a worker is a hornbeam process that
// serves HTTP itself on listeners it inherits, with CPython loaded in
// process (or is the interpreter, hosting hornbeam's worker library). Its
// fd 3 is a control socket to the server, with the same frames; fd 4 and
// fd 5 are as above (the state socket and the change table), fd 6 is the
// pipe for its access log lines, and its listeners follow from fd 7 on.
// With --preload, hosted workers are forked by a zygote (ForkEmbedded),
// which holds fd 5 and the listeners and gets the rest with each fork.
// Only these cross fd 3:
//
//	Ready      worker -> server  as above, once the app is imported and it serves
//	Load       worker -> server  id=0, payload (requests served int, in flight int,
//	                             bytes: each request since the last Load as its
//	                             status and microseconds, uint32 little-endian
//	                             each); sent when it changed, at most every 250 ms
//	Retire     worker -> server  id=0, payload str reason: replace me (the worker
//	                             reached --max-requests, or a request overran
//	                             --timeout); it goes on serving until Shutdown
//	Shutdown   server -> worker  stop accepting, finish the requests held (up to
//	                             the graceful timeout), exit; payload empty (the
//	                             server stops: WebSockets get 1001) or "restart"
//	                             (a reload or recycle: 1012)
//	Subscribers worker -> server id=0, payload (topic str, n int): the worker now
//	                             has n subscribers to topic (hornbeam.subscribe,
//	                             ws_subscribe); 0 removes it
//	Publish    server -> worker  id=0, payload (topic str, text bool, data bytes):
//	                             a hornbeam.publish for a topic the worker has
//	                             subscribers to (the publish itself is a state
//	                             call, so any worker of any mode can publish)
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// Frame types. The numbers are part of the protocol (see _wire.py).
const (
	// server -> worker
	Request    byte = 1
	RequestFD  byte = 2
	StateReply byte = 3
	Shutdown   byte = 4
	Fork       byte = 5
	// ForkEmbedded: see "Embedded workers".
	ForkEmbedded byte = 6

	// worker -> server
	Ready     byte = 16
	Start     byte = 17
	Body      byte = 18
	File      byte = 19
	End       byte = 20
	Error     byte = 21
	Hints     byte = 22
	StateCall byte = 23
	Forked    byte = 24
	ChildExit byte = 25
	Load      byte = 26 // embedded workers only
	Retire    byte = 27 // embedded workers only
	// Subscribers goes worker -> server, Publish server -> worker:
	// embedded workers only.
	Subscribers byte = 28
	Publish     byte = 29
)

// HeaderSize is the size of a frame header in bytes.
const HeaderSize = 9

// MaxPayload bounds one frame's payload. Larger bodies are sent as several
// Body frames; larger request bodies travel as a file descriptor.
const MaxPayload = 64 << 20

// TypeName returns a readable name for a frame type, for logs and errors.
func TypeName(t byte) string {
	switch t {
	case Request:
		return "Request"
	case RequestFD:
		return "RequestFD"
	case StateReply:
		return "StateReply"
	case Shutdown:
		return "Shutdown"
	case Ready:
		return "Ready"
	case Start:
		return "Start"
	case Body:
		return "Body"
	case File:
		return "File"
	case End:
		return "End"
	case Error:
		return "Error"
	case Hints:
		return "Hints"
	case StateCall:
		return "StateCall"
	case Load:
		return "Load"
	case Retire:
		return "Retire"
	case Subscribers:
		return "Subscribers"
	case Publish:
		return "Publish"
	case Fork:
		return "Fork"
	case ForkEmbedded:
		return "ForkEmbedded"
	case Forked:
		return "Forked"
	case ChildExit:
		return "ChildExit"
	}
	return fmt.Sprintf("type(%d)", t)
}

// carriesFD reports whether a frame of type t arrives with a descriptor.
func carriesFD(t byte) bool { return t == RequestFD || t == File }

// Frame is one decoded frame. Payload is owned by the frame. FD is set for
// frame types that carry a descriptor; the receiver must close it.
type Frame struct {
	Type    byte
	ID      uint32
	Payload []byte
	FD      *os.File

	buf *[]byte // a read buffer Payload lies in, for Release
}

// Release gives a large payload's memory back for reuse once the receiver
// is done with Payload (for example, after writing it to the client). It
// may be skipped: the memory is then collected as usual. Payload must not
// be used after Release.
func (f *Frame) Release() {
	if f.buf != nil {
		readBufs.Put(f.buf)
		f.buf = nil
	}
	f.Payload = nil
}

// Discard drops a frame its receiver will not use (its call was abandoned):
// it closes the descriptor the frame carries, if any, and releases the
// payload.
func (f *Frame) Discard() {
	if f.FD != nil {
		f.FD.Close()
		f.FD = nil
	}
	f.Release()
}

// readBufs holds read buffers of readBufSize that a large payload was
// handed out in (see ReadFrame).
var readBufs = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}

// ErrProtocol is wrapped by every error caused by a malformed frame stream.
var ErrProtocol = errors.New("wire protocol error")

// Conn reads and writes frames on a Unix stream socket. ReadFrame must be
// called from one goroutine; WriteFrame may be called from many.
type Conn struct {
	uc *net.UnixConn

	// read side (single reader)
	rbuf []byte // unread bytes are rbuf[r:w]
	r, w int
	oob  []byte
	fds  []*os.File

	wmu  sync.Mutex
	wbuf []byte
}

// NewConn wraps a connected Unix stream socket.
func NewConn(uc *net.UnixConn) *Conn {
	return &Conn{
		uc:   uc,
		rbuf: make([]byte, readBufSize),
		oob:  make([]byte, syscall.CmsgSpace(4*16)),
	}
}

// Close closes the socket and any descriptors received but not yet claimed.
func (c *Conn) Close() error {
	for _, f := range c.fds {
		f.Close()
	}
	c.fds = nil
	return c.uc.Close()
}

// A payload of at least handOverMin bytes that is followed in the read
// buffer by at most handOverSlack more bytes is not copied out: the buffer
// becomes the payload's, and reading goes on in a fresh one (those few
// bytes copied over). A 64 KB response body then costs no copy and no
// allocation in Go.
const (
	handOverMin   = 16 << 10
	handOverSlack = 4 << 10
)

// readBufSize is the read buffer's usual size, enough for most response
// bodies; it grows for a larger frame (as the frame's bytes arrive, not on
// the header's word) and, past shrinkAbove, shrinks back once that frame is
// consumed.
const (
	readBufSize = 256 << 10
	shrinkAbove = 1 << 20
)

// fill reads more bytes from the socket, collecting passed descriptors,
// with room for at least want unread bytes in the buffer.
func (c *Conn) fill(want int) error {
	if c.r == c.w {
		c.r, c.w = 0, 0
		if len(c.rbuf) > shrinkAbove && want <= readBufSize {
			c.rbuf = make([]byte, readBufSize)
		}
	}
	if c.r+want > len(c.rbuf) || c.w == len(c.rbuf) {
		if c.r > 0 {
			c.w = copy(c.rbuf, c.rbuf[c.r:c.w])
			c.r = 0
		}
		if want > len(c.rbuf) || c.w == len(c.rbuf) {
			// Grow by at most 4 MiB at a time: a header alone does not
			// make us allocate its whole payload.
			nb := make([]byte, max(min(want, c.w+4<<20), readBufSize))
			copy(nb, c.rbuf[:c.w])
			c.rbuf = nb
		}
	}
	n, oobn, _, _, err := c.uc.ReadMsgUnix(c.rbuf[c.w:], c.oob)
	if oobn > 0 {
		if perr := c.collectFDs(c.oob[:oobn]); perr != nil && err == nil {
			err = perr
		}
	}
	c.w += n
	if n == 0 && err == nil {
		err = io.EOF
	}
	return err
}

func (c *Conn) collectFDs(oob []byte) error {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return fmt.Errorf("%w: bad control message: %v", ErrProtocol, err)
	}
	for _, m := range msgs {
		fds, err := syscall.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			syscall.CloseOnExec(fd)
			c.fds = append(c.fds, os.NewFile(uintptr(fd), "passed-fd"))
		}
	}
	return nil
}

// appendHeader appends the header of a frame with an n-byte payload.
func appendHeader(b []byte, typ byte, id uint32, n int) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	b = append(b, typ)
	return binary.BigEndian.AppendUint32(b, id)
}

// parseHeader decodes a frame header (HeaderSize bytes). A payload length
// over MaxPayload is an error wrapping ErrProtocol.
func parseHeader(h []byte) (typ byte, id uint32, n int, err error) {
	size := binary.BigEndian.Uint32(h[0:4])
	typ, id = h[4], binary.BigEndian.Uint32(h[5:9])
	if size > MaxPayload {
		return typ, id, 0, fmt.Errorf("%w: %s frame of %d bytes exceeds the %d limit", ErrProtocol, TypeName(typ), size, MaxPayload)
	}
	return typ, id, int(size), nil
}

// ReadFrame reads the next frame. Errors other than io.EOF wrap ErrProtocol
// when the peer sent something malformed.
func (c *Conn) ReadFrame() (Frame, error) {
	for c.w-c.r < HeaderSize {
		if err := c.fill(HeaderSize); err != nil {
			return Frame{}, c.readErr(err)
		}
	}
	typ, id, n, err := parseHeader(c.rbuf[c.r : c.r+HeaderSize])
	if err != nil {
		return Frame{}, err
	}
	f := Frame{Type: typ, ID: id}
	total := HeaderSize + n
	for c.w-c.r < total {
		if err := c.fill(total); err != nil {
			return Frame{}, c.readErr(err)
		}
	}
	if n >= handOverMin && len(c.rbuf) == readBufSize && c.w-(c.r+total) <= handOverSlack {
		old := c.rbuf
		f.Payload = old[c.r+HeaderSize : c.r+total : c.r+total]
		nb := readBufs.Get().(*[]byte)
		c.rbuf = *nb
		c.w = copy(c.rbuf, old[c.r+total:c.w])
		c.r = 0
		*nb = old // the pointer now carries the old buffer back to the pool
		f.buf = nb
	} else {
		f.Payload = append([]byte(nil), c.rbuf[c.r+HeaderSize:c.r+total]...)
		c.r += total
	}
	if carriesFD(f.Type) {
		if len(c.fds) == 0 {
			return Frame{}, fmt.Errorf("%w: %s frame without a file descriptor", ErrProtocol, TypeName(f.Type))
		}
		f.FD = c.fds[0]
		c.fds = c.fds[1:]
	}
	return f, nil
}

// readErr turns the end of the stream inside a frame into
// io.ErrUnexpectedEOF; between frames io.EOF is a clean close.
func (c *Conn) readErr(err error) error {
	if errors.Is(err, io.EOF) {
		if c.w > c.r {
			return io.ErrUnexpectedEOF
		}
		return io.EOF
	}
	return err
}

// Buffered reports whether a whole frame is already buffered, so that the
// next ReadFrame returns without reading the socket.
func (c *Conn) Buffered() bool {
	if c.w-c.r < HeaderSize {
		return false
	}
	n := binary.BigEndian.Uint32(c.rbuf[c.r : c.r+4])
	return uint64(c.w-c.r) >= uint64(HeaderSize)+uint64(n)
}

// WriteFrame writes one frame with fds (if any) attached to it.
// It is safe for concurrent use.
func (c *Conn) WriteFrame(typ byte, id uint32, payload []byte, fds ...*os.File) error {
	if len(payload) > MaxPayload {
		return fmt.Errorf("wire: %s payload of %d bytes exceeds the %d limit", TypeName(typ), len(payload), MaxPayload)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := append(appendHeader(c.wbuf[:0], typ, id, len(payload)), payload...)
	if cap(b) <= 1<<20 {
		c.wbuf = b
	}
	if len(fds) > 0 {
		ints := make([]int, len(fds))
		for i, f := range fds {
			ints[i] = int(f.Fd())
		}
		oob := syscall.UnixRights(ints...)
		n, _, err := c.uc.WriteMsgUnix(b, oob, nil)
		if err != nil {
			return err
		}
		b = b[n:]
	}
	for len(b) > 0 {
		n, err := c.uc.Write(b)
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}
