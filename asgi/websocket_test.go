package asgi_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func dial(t *testing.T, s *server, path string, opts *websocket.DialOptions) (*websocket.Conn, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, res, err := websocket.Dial(ctx, "ws://"+s.addr+path, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	c.SetReadLimit(1 << 20)
	return c, res
}

func read(t *testing.T, c *websocket.Conn) (websocket.MessageType, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	typ, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return typ, string(b)
}

// closeStatus reads until the connection closes and returns the code and
// reason the server closed with.
func closeStatus(t *testing.T, c *websocket.Conn) (websocket.StatusCode, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for {
		_, _, err := c.Read(ctx)
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code, ce.Reason
		}
		t.Fatalf("the connection ended without a close frame: %v", err)
	}
}

func TestWebSocketEcho(t *testing.T) {
	s := start(t, nil, "asgi_app:app")
	c, res := dial(t, s, "/ws/echo", &websocket.DialOptions{Subprotocols: []string{"chat.v2", "chat.v1"}})
	if c.Subprotocol() != "chat.v2" || res.Header.Get("X-Accepted") != "1" {
		t.Errorf("subprotocol %q, X-Accepted %q: the accept's subprotocol and headers must reach the client", c.Subprotocol(), res.Header.Get("X-Accepted"))
	}
	ctx := t.Context()
	for _, m := range []struct {
		typ  websocket.MessageType
		data string
	}{{websocket.MessageText, "hello ☃"}, {websocket.MessageBinary, "\x00\xff binary"}, {websocket.MessageText, strings.Repeat("big", 100_000)}} {
		if err := c.Write(ctx, m.typ, []byte(m.data)); err != nil {
			t.Fatal(err)
		}
		typ, got := read(t, c)
		if typ != m.typ || got != m.data {
			t.Errorf("echo of a %v message of %d bytes: %v, %d bytes", m.typ, len(m.data), typ, len(got))
		}
	}
	c.Close(4000, "client bye")
	got := s.waitEvent("ws_closed", 5*time.Second, func(v any) bool { return v != nil })
	if fmt.Sprint(got) != "[4000 client bye]" {
		t.Errorf("the app saw websocket.disconnect %v, want code 4000 and the reason", got)
	}
}

func TestWebSocketClose(t *testing.T) {
	s := start(t, nil, "asgi_app:app", "--ws-max-message-size", "1K")
	t.Run("app closes with code and reason", func(t *testing.T) {
		c, _ := dial(t, s, "/ws/close", nil)
		if code, reason := closeStatus(t, c); code != 4001 || reason != "bye" {
			t.Errorf("close %d %q, want 4001 bye", code, reason)
		}
	})
	t.Run("server push while the client is silent", func(t *testing.T) {
		c, _ := dial(t, s, "/ws/push", nil)
		for i := 0; i < 3; i++ {
			if _, got := read(t, c); got != fmt.Sprintf("push %d", i) {
				t.Errorf("message %d: %q", i, got)
			}
		}
	})
	t.Run("1009 over --ws-max-message-size", func(t *testing.T) {
		c, _ := dial(t, s, "/ws/echo", nil)
		c.Write(t.Context(), websocket.MessageBinary, make([]byte, 2048))
		if code, _ := closeStatus(t, c); code != websocket.StatusMessageTooBig {
			t.Errorf("close %d, want 1009", code)
		}
	})
	t.Run("1007 on invalid UTF-8", func(t *testing.T) {
		c, _ := dial(t, s, "/ws/echo", nil)
		c.Write(t.Context(), websocket.MessageText, []byte("bad \xff\xfe"))
		if code, _ := closeStatus(t, c); code != websocket.StatusInvalidFramePayloadData {
			t.Errorf("close %d, want 1007", code)
		}
	})
}

func TestWebSocketDenied(t *testing.T) {
	s := start(t, nil, "asgi_app:app")
	for _, tt := range []struct {
		path   string
		status int
		body   string
	}{
		{"/ws/deny", 403, "Forbidden"},
		{"/ws/http", 401, "nope"},
	} {
		_, res, err := websocket.Dial(t.Context(), "ws://"+s.addr+tt.path, nil)
		if err == nil || res == nil {
			t.Fatalf("%s: dial succeeded (%v)", tt.path, err)
		}
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != tt.status || !strings.Contains(string(body), tt.body) {
			t.Errorf("%s: %d %q, want %d %q", tt.path, res.StatusCode, body, tt.status, tt.body)
		}
	}
}

// SIGTERM closes open WebSockets with 1001 (going away).
func TestWebSocketShutdown(t *testing.T) {
	s := start(t, nil, "asgi_app:app")
	c, _ := dial(t, s, "/ws/echo", nil)
	s.signal(syscall.SIGTERM)
	if code, _ := closeStatus(t, c); code != websocket.StatusGoingAway {
		t.Errorf("close %d, want 1001", code)
	}
	if status := s.waitExit(15 * time.Second); status != 0 {
		t.Errorf("exit status %d\n%s", status, s.log.String())
	}
}

// A client that never answers pings is closed after interval + timeout.
func TestWebSocketPing(t *testing.T) {
	s := start(t, nil, "asgi_app:app", "--ws-ping-interval", "200ms", "--ws-ping-timeout", "300ms")
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /ws/echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != 101 {
		t.Fatalf("handshake: %v %v", res, err)
	}
	// Read frames (pings) without ever answering, until the server hangs up.
	c.SetDeadline(time.Now().Add(5 * time.Second))
	began := time.Now()
	pings := 0
	for {
		hdr := make([]byte, 2)
		if _, err := io.ReadFull(br, hdr); err != nil {
			break
		}
		n := int(hdr[1] & 0x7f)
		io.CopyN(io.Discard, br, int64(n))
		if hdr[0]&0x0f == 0x9 {
			pings++
		}
	}
	if took := time.Since(began); pings == 0 || took > 3*time.Second {
		t.Errorf("%d pings, closed after %s: want pings and a close within about 0.5s", pings, took)
	}
	s.waitLog(5*time.Second, "no pong within 300ms")
}

// hornbeam.publish reaches the WebSockets subscribed with ws_subscribe
// (written by Go) and the subscribe() iterators, in every worker.
func TestPubSub(t *testing.T) {
	s := start(t, nil, "asgi_app:app", "-w", "2")
	var socks []*websocket.Conn
	for i := 0; i < 4; i++ {
		c, _ := dial(t, s, "/ws/room?topic=chat", nil)
		if _, got := read(t, c); got != "subscribed" {
			t.Fatalf("socket %d: %q", i, got)
		}
		socks = append(socks, c)
	}
	// A long poll waiting in subscribe().
	polled := make(chan string, 1)
	go func() {
		res, err := http.Get(s.url("/subscribe?topic=chat&n=2"))
		if err != nil {
			polled <- err.Error()
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		polled <- string(b)
	}()
	if _, n := s.get("/publish?topic=nobody&msg=x"); n != "0" {
		t.Fatalf("publish to a topic without subscribers returned %s", n)
	}
	// A subscription reaches the server a moment after it is made (in its
	// worker's frames): publish "hello" until all 5 count.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, n := s.get("/publish?topic=chat&msg=hello")
		if n == "5" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("publish returned %s subscribers, want 5 (4 sockets, 1 iterator)", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Each socket got a "hello" per publish that counted it.
	readUntil := func(i int, want string) {
		t.Helper()
		for {
			typ, got := read(t, socks[i])
			if got == want && typ == websocket.MessageText {
				return
			}
			if got != "hello" {
				t.Errorf("socket %d got %v %q, want %q", i, typ, got, want)
				return
			}
		}
	}
	for i := range socks {
		readUntil(i, "hello")
	}
	// From a socket's own task, through hornbeam_erlang.
	socks[0].Write(t.Context(), websocket.MessageText, []byte("pub:from socket 0"))
	for i := range socks {
		readUntil(i, "from socket 0")
	}
	select {
	case got := <-polled:
		if got != `["hello", "from socket 0"]` {
			t.Errorf("subscribe() got %s", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the long poll did not return")
	}
	// The ended iterator's unsubscribe reaches the server a moment after
	// its response: publish (the same JSON each time) until it counts 4.
	deadline = time.Now().Add(5 * time.Second)
	for {
		_, n := s.get("/publish?topic=chat&json=1&msg=" + "%7B%22a%22%3A%5B1%2C2%5D%7D")
		if n == "4" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("publish returned %s, want 4 once the iterator ended", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, got := read(t, socks[3]); got != `{"a":[1,2]}` {
		t.Errorf("a JSON message arrived as %q", got)
	}
	// A closed socket is no longer a subscriber.
	socks[3].Close(websocket.StatusNormalClosure, "")
	deadline = time.Now().Add(5 * time.Second)
	for {
		if _, n := s.get("/publish?topic=chat&msg=x"); n == "3" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a closed socket still counts as a subscriber")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A reload (SIGHUP) replaces the workers: their WebSockets close with 1012
// (service restart), and the new workers serve.
func TestWebSocketReload(t *testing.T) {
	s := start(t, nil, "asgi_app:app")
	_, before := s.get("/pid")
	c, _ := dial(t, s, "/ws/echo", nil)
	s.signal(syscall.SIGHUP)
	if code, _ := closeStatus(t, c); code != websocket.StatusServiceRestart {
		t.Errorf("close %d, want 1012", code)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, after := s.get("/pid"); after != before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no new worker after SIGHUP")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// permessage-deflate is off unless --ws-per-message-deflate; when on, the
// size limit applies to the inflated message (a small compressed message
// that inflates past it is refused with 1009).
func TestWebSocketDeflate(t *testing.T) {
	deflate := &websocket.DialOptions{CompressionMode: websocket.CompressionNoContextTakeover}
	off := start(t, nil, "asgi_app:app")
	_, res := dial(t, off, "/ws/echo", deflate)
	if ext := res.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		t.Errorf("compression negotiated without the flag: %q", ext)
	}
	s := start(t, nil, "asgi_app:app", "--ws-per-message-deflate", "--ws-max-message-size", "64K")
	c, res := dial(t, s, "/ws/echo", deflate)
	if ext := res.Header.Get("Sec-WebSocket-Extensions"); !strings.Contains(ext, "permessage-deflate") {
		t.Fatalf("no permessage-deflate with the flag: %q", ext)
	}
	msg := strings.Repeat("compressible ", 1000)
	c.Write(t.Context(), websocket.MessageText, []byte(msg))
	if _, got := read(t, c); got != msg {
		t.Errorf("echo of %d bytes came back as %d", len(msg), len(got))
	}
	// 1 MiB of zeros deflates to about 1 KB: the limit counts 1 MiB.
	c.Write(t.Context(), websocket.MessageBinary, make([]byte, 1<<20))
	if code, _ := closeStatus(t, c); code != websocket.StatusMessageTooBig {
		t.Errorf("close %d, want 1009 for a message that inflates past the limit", code)
	}
}
