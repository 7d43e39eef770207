package wire

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall"
)

// CallConn is the server's end of a worker's state socket (see "State
// socket" in the package documentation): StateCall frames in, one StateReply
// out for each, one call at a time.
//
// It reads and writes with blocking system calls on its own thread instead
// of the runtime's network poller. A state call is a synchronous round trip
// that the worker's Python code waits for, so its cost is the wake-ups: a
// thread blocked in read(2) is woken by the kernel directly, while a
// goroutine parked on the poller needs the poller's wake-up and then the
// scheduler's. On a 2-core machine a bare ping-pong with a Python process
// measured 10-11 µs against 12-15 µs through the poller.
type CallConn struct {
	mu  sync.Mutex // guards fd between Serve's close and Shutdown
	fd  int        // -1 once closed
	buf []byte
}

// NewCallConn takes ownership of fd, the server's end of a state socket, and
// switches it to blocking mode.
func NewCallConn(fd int) (*CallConn, error) {
	if err := syscall.SetNonblock(fd, false); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("state socket: %w", err)
	}
	return &CallConn{fd: fd, buf: make([]byte, 4096)}, nil
}

// Serve answers StateCall frames with handle's reply until the worker closes
// its end (nil) or Shutdown is called (nil), or the stream is malformed (an
// error wrapping ErrProtocol). The payload passed to handle is only valid
// during the call. Serve closes the socket when it returns. It blocks a
// thread for as long as it runs.
func (c *CallConn) Serve(handle func(payload []byte) []byte) error {
	defer c.Close()
	for {
		id, payload, err := c.readCall()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := c.reply(id, handle(payload)); err != nil {
			return nil // the worker is gone or the socket was shut down
		}
	}
}

// Shutdown makes a running Serve return: it shuts the socket down, which
// wakes a blocked read(2) (closing the descriptor would not). Safe to call
// at any time, more than once.
func (c *CallConn) Shutdown() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd >= 0 {
		syscall.Shutdown(c.fd, syscall.SHUT_RDWR)
	}
}

// Close closes the socket of a CallConn that Serve was never called on
// (Serve closes it itself).
func (c *CallConn) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd >= 0 {
		syscall.Close(c.fd)
		c.fd = -1
	}
}

// readCall reads one StateCall frame into c.buf.
func (c *CallConn) readCall() (uint32, []byte, error) {
	h := c.buf[:HeaderSize]
	if err := c.readFull(h, true); err != nil {
		return 0, nil, err
	}
	typ, id, n, err := parseHeader(h)
	if err != nil {
		return 0, nil, err
	}
	if typ != StateCall {
		return 0, nil, fmt.Errorf("%w: %s frame on the state socket", ErrProtocol, TypeName(typ))
	}
	// Grow by at most 4 MiB at a time, as the bytes arrive: a header
	// alone does not make us allocate its whole payload.
	payload := c.buf[:0]
	for len(payload) < n {
		if len(payload) == cap(payload) {
			nb := make([]byte, len(payload), min(n, cap(payload)+4<<20))
			copy(nb, payload)
			payload = nb
		}
		k := len(payload)
		if err := c.readFull(payload[k:min(n, cap(payload))], false); err != nil {
			return 0, nil, err
		}
		payload = payload[:min(n, cap(payload))]
	}
	if cap(payload) <= 1<<20 {
		c.buf = payload[:0]
	} else {
		c.buf = make([]byte, 4096) // do not keep one large call's buffer
	}
	return id, payload, nil
}

// readFull fills b. The end of the stream is io.EOF before the first byte
// of a frame (atStart) and io.ErrUnexpectedEOF inside one.
func (c *CallConn) readFull(b []byte, atStart bool) error {
	for got := 0; got < len(b); {
		n, err := syscall.Read(c.fd, b[got:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			if atStart && got == 0 {
				return io.EOF
			}
			return io.ErrUnexpectedEOF
		}
		got += n
	}
	return nil
}

func (c *CallConn) reply(id uint32, payload []byte) error {
	b := append(appendHeader(make([]byte, 0, HeaderSize+len(payload)), StateReply, id, len(payload)), payload...)
	for len(b) > 0 {
		n, err := syscall.Write(c.fd, b)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}
