package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"syscall"
	"testing"
	"time"
)

// served returns a CallConn being served with handle, the worker's end of
// its socket, and a channel that receives Serve's result.
func served(t testing.TB, handle func([]byte) []byte) (c *CallConn, peer int, done chan error) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if c, err = NewCallConn(fds[0]); err != nil {
		t.Fatal(err)
	}
	done = make(chan error, 1)
	go func() { done <- c.Serve(handle) }()
	t.Cleanup(func() { c.Shutdown(); syscall.Close(fds[1]) })
	return c, fds[1], done
}

func reversed(p []byte) []byte {
	r := make([]byte, len(p))
	for i, b := range p {
		r[len(p)-1-i] = b
	}
	return r
}

// callPair returns the worker's end of a CallConn that answers each call
// with its payload reversed, and the channel of Serve's result.
func callPair(t *testing.T) (peer int, done chan error) {
	_, peer, done = served(t, reversed)
	return peer, done
}

func wait(t *testing.T, done chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
		return nil
	}
}

func TestCallConnRoundTrip(t *testing.T) {
	peer, done := callPair(t)
	big := bytes.Repeat([]byte("0123456789"), 300_000) // over the 1 MiB buffer bound
	for i, p := range [][]byte{[]byte("abc"), nil, big, []byte("xyz")} {
		msg := frameBytes(StateCall, uint32(i), p)
		// Written in two pieces: the server must not take half a frame for one.
		cut := min(len(msg), 5)
		syscall.Write(peer, msg[:cut])
		time.Sleep(time.Millisecond)
		for b := msg[cut:]; len(b) > 0; {
			n, err := syscall.Write(peer, b)
			if err != nil {
				t.Fatal(err)
			}
			b = b[n:]
		}
		got := make([]byte, HeaderSize+len(p))
		for n := 0; n < len(got); {
			k, err := syscall.Read(peer, got[n:])
			if err != nil || k == 0 {
				t.Fatalf("reading reply %d: %v", i, err)
			}
			n += k
		}
		if got[4] != StateReply || binary.BigEndian.Uint32(got[5:9]) != uint32(i) || int(binary.BigEndian.Uint32(got[0:4])) != len(p) {
			t.Fatalf("reply %d header % x", i, got[:HeaderSize])
		}
		for j := range p {
			if got[HeaderSize+j] != p[len(p)-1-j] {
				t.Fatalf("reply %d: wrong byte at %d", i, j)
			}
		}
	}
	syscall.Shutdown(peer, syscall.SHUT_WR) // the worker exits between calls
	if err := wait(t, done); err != nil {
		t.Errorf("EOF between calls: %v, want nil", err)
	}
}

func TestCallConnBadStream(t *testing.T) {
	cases := []struct {
		name  string
		bytes []byte
		want  error
	}{
		{"request frame type", frameBytes(Request, 1, []byte("x")), ErrProtocol},
		{"oversized call", binary.BigEndian.AppendUint32(nil, MaxPayload+1), ErrProtocol},
		{"truncated header", []byte{0, 0, 0}, io.ErrUnexpectedEOF},
		{"truncated payload", frameBytes(StateCall, 1, []byte("abcdef"))[:HeaderSize+2], io.ErrUnexpectedEOF},
		{"huge length, few bytes", append(binary.BigEndian.AppendUint32(nil, 60<<20), StateCall, 0, 0, 0, 1, 'x'), io.ErrUnexpectedEOF},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			peer, done := callPair(t)
			b := c.bytes
			if len(b) == 4 { // just a length: complete the header
				b = append(b, StateCall, 0, 0, 0, 1)
			}
			syscall.Write(peer, b)
			syscall.Shutdown(peer, syscall.SHUT_WR)
			if err := wait(t, done); !errors.Is(err, c.want) {
				t.Errorf("Serve returned %v, want %v", err, c.want)
			}
		})
	}
}

// Shutdown wakes a Serve blocked in read(2), which closing would not.
func TestCallConnShutdownWakesServe(t *testing.T) {
	c, _, done := served(t, reversed)
	time.Sleep(50 * time.Millisecond) // let it block
	c.Shutdown()
	if err := wait(t, done); err != nil {
		t.Errorf("after Shutdown: %v", err)
	}
	c.Shutdown() // after Serve closed the socket: a no-op
}

// FuzzCallConn: whatever a worker writes on its state socket, Serve
// answers whole StateCall frames, then returns (nil at a clean end, an
// error otherwise) without panicking.
func FuzzCallConn(f *testing.F) {
	f.Add(frameBytes(StateCall, 1, []byte("abc")))
	f.Add(append(frameBytes(StateCall, 1, nil), frameBytes(StateCall, 2, []byte("x"))...))
	f.Add(frameBytes(Body, 1, []byte("abc")))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, StateCall, 0, 0, 0, 1})
	f.Add([]byte{0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, peer, done := served(t, func(p []byte) []byte { return p })
		go func() {
			// Drain the replies so that Serve never blocks writing them.
			buf := make([]byte, 64<<10)
			for {
				if n, err := syscall.Read(peer, buf); n <= 0 || err != nil {
					return
				}
			}
		}()
		for b := data; len(b) > 0; {
			n, err := syscall.Write(peer, b)
			if err != nil {
				break
			}
			b = b[n:]
		}
		syscall.Shutdown(peer, syscall.SHUT_WR)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			c.Shutdown()
			t.Fatal("Serve did not return after the peer stopped writing")
		}
	})
}
