package asgi_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
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

// rawWS is a WebSocket client on a bare TCP connection, writing frames
// exactly as a test lays them out (split, fragmented, batched).
type rawWS struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, s *server, path string) *rawWS {
	t.Helper()
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", path)
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != 101 {
		t.Fatalf("handshake: %v %v", res, err)
	}
	return &rawWS{t: t, c: c, br: br}
}

// frame is a masked client frame (RFC 6455 5.2).
func frame(fin bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	out := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		out = append(out, 0x80|byte(n))
	case n < 1<<16:
		out = append(out, 0x80|126, byte(n>>8), byte(n))
	default:
		out = append(out, 0x80|127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	out = append(out, key[:]...)
	for i, c := range payload {
		out = append(out, c^key[i%4])
	}
	return out
}

func (r *rawWS) write(b []byte) {
	r.t.Helper()
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

// next reads the server's next frame (unmasked): opcode and payload.
func (r *rawWS) next() (byte, string) {
	r.t.Helper()
	hdr := make([]byte, 2)
	if _, err := io.ReadFull(r.br, hdr); err != nil {
		r.t.Fatalf("reading a frame: %v", err)
	}
	n := uint64(hdr[1] & 0x7f)
	switch n {
	case 126:
		ext := make([]byte, 2)
		io.ReadFull(r.br, ext)
		n = uint64(ext[0])<<8 | uint64(ext[1])
	case 127:
		ext := make([]byte, 8)
		io.ReadFull(r.br, ext)
		n = 0
		for _, b := range ext {
			n = n<<8 | uint64(b)
		}
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r.br, p); err != nil {
		r.t.Fatalf("reading a frame's payload: %v", err)
	}
	return hdr[0] & 0x0f, string(p)
}

// An idle socket is parked without a goroutine (wsconn.go, wspoll.go);
// the bytes that wake it may come in any pieces: a frame split anywhere,
// a fragmented message with a ping in its middle and pauses between its
// frames (the socket must not park inside a message), several messages
// in one segment, a large message.
func TestWebSocketParkedFraming(t *testing.T) {
	s := start(t, nil, "asgi_app:app")
	r := dialRaw(t, s, "/ws/echo")
	pause := func() { time.Sleep(150 * time.Millisecond) } // long enough for the socket to park

	f := frame(true, 0x1, []byte("split frame"))
	r.write(f[:1])
	pause()
	r.write(f[1:4]) // inside the mask
	pause()
	r.write(f[4:9])
	pause()
	r.write(f[9:])
	if op, got := r.next(); op != 0x1 || got != "split frame" {
		t.Errorf("a frame written in four pieces: echo %x %q", op, got)
	}

	r.write(frame(false, 0x1, []byte("frag")))
	pause()
	r.write(frame(true, 0x9, []byte("mid-message ping")))
	if op, got := r.next(); op != 0xA || got != "mid-message ping" {
		t.Errorf("a ping inside a fragmented message: %x %q, want its pong", op, got)
	}
	pause()
	r.write(frame(false, 0x0, []byte("men")))
	pause()
	r.write(frame(true, 0x0, []byte("ted")))
	if op, got := r.next(); op != 0x1 || got != "fragmented" {
		t.Errorf("a message in three frames with pauses: echo %x %q", op, got)
	}

	var batch []byte
	for i := 0; i < 5; i++ {
		batch = append(batch, frame(true, 0x2, []byte(fmt.Sprintf("batch %d", i)))...)
	}
	batch = append(batch, frame(true, 0x1, []byte("half"))[:3]...)
	r.write(batch)
	for i := 0; i < 5; i++ {
		if op, got := r.next(); op != 0x2 || got != fmt.Sprintf("batch %d", i) {
			t.Errorf("message %d of a batch: echo %x %q", i, op, got)
		}
	}
	pause()
	r.write(frame(true, 0x1, []byte("half"))[3:])
	if _, got := r.next(); got != "half" {
		t.Errorf("the rest of a frame begun in a batch: echo %q", got)
	}

	big := strings.Repeat("0123456789abcdef", 20000) // 320 KB, several reads
	r.write(frame(true, 0x1, []byte(big)))
	if _, got := r.next(); got != big {
		t.Errorf("a message of %d bytes: echo of %d", len(big), len(got))
	}

	r.write(frame(true, 0x8, []byte{0x0f, 0xa0, 'o', 'k'})) // close 4000 "ok"
	if op, got := r.next(); op != 0x8 || len(got) < 2 || got[0] != 0x0f || got[1] != 0xa0 {
		t.Errorf("close: %x %q, want the close frame echoed with 4000", op, got)
	}
	got := s.waitEvent("ws_closed", 5*time.Second, func(v any) bool { return v != nil })
	if fmt.Sprint(got) != "[4000 ok]" {
		t.Errorf("the app saw websocket.disconnect %v, want [4000 ok]", got)
	}
}

// A parked socket answers pings: each pong wakes it, it reads the pong and
// parks again; a client that answers is never closed, and still echoes.
func TestWebSocketParkedPings(t *testing.T) {
	s := start(t, nil, "asgi_app:app", "--ws-ping-interval", "100ms", "--ws-ping-timeout", "1s")
	r := dialRaw(t, s, "/ws/echo")
	pings := 0
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); {
		op, p := r.next()
		if op != 0x9 {
			t.Fatalf("frame %x %q, want pings", op, p)
		}
		pings++
		r.write(frame(true, 0xA, []byte(p)))
	}
	if pings < 5 {
		t.Errorf("%d pings in 1.5 s at a 100 ms interval", pings)
	}
	r.write(frame(true, 0x1, []byte("still here")))
	for {
		op, p := r.next()
		if op == 0x9 {
			r.write(frame(true, 0xA, []byte(p)))
			continue
		}
		if op != 0x1 || p != "still here" {
			t.Errorf("after %d pings: %x %q, want the echo", pings, op, p)
		}
		break
	}
	if strings.Contains(s.log.String(), "no pong") {
		t.Errorf("a client that answered every ping was closed:\n%s", s.log.String())
	}
}

// Idle WebSockets cost little: no goroutine, no buffer (about 10 KB each,
// Python's task and scope included, against 35 KB with a goroutine and
// net/http's buffers per socket). The worker's RSS grows by less than 20
// KB per socket, and every socket still works.
func TestWebSocketIdleMemory(t *testing.T) {
	n := 1000
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < uint64(n+200) {
		lim.Cur = min(lim.Max, uint64(n+200))
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
		if lim.Cur < uint64(n+200) {
			t.Skipf("descriptor limit %d: %d sockets need %d", lim.Cur, n, n+200)
		}
	}
	s := start(t, nil, "asgi_app:app")
	_, pid := s.get("/pid")
	rss := func() int {
		b, err := os.ReadFile("/proc/" + strings.TrimSpace(pid) + "/status")
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.Atoi(f[1])
				return kb
			}
		}
		t.Fatal("no VmRSS")
		return 0
	}
	open := func(k int) []*websocket.Conn {
		socks := make([]*websocket.Conn, k)
		for i := range socks {
			socks[i], _ = dial(t, s, "/ws/echo", nil)
		}
		return socks
	}
	echo := func(c *websocket.Conn, msg string) {
		if err := c.Write(t.Context(), websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if _, got := read(t, c); got != msg {
			t.Fatalf("echo %q, want %q", got, msg)
		}
	}
	// Warm up (pools, the interpreter's arenas), then measure.
	for _, c := range open(100) {
		echo(c, "warm")
		c.Close(websocket.StatusNormalClosure, "")
	}
	time.Sleep(500 * time.Millisecond)
	before := rss()
	socks := open(n)
	for _, c := range socks {
		echo(c, "x") // each socket's task has run and waits in receive()
	}
	time.Sleep(time.Second) // idle: the sockets park
	per := float64(rss()-before) / float64(n)
	t.Logf("%d idle WebSockets: %.1f KB each (worker RSS)", n, per)
	if per > 20 {
		t.Errorf("%d idle WebSockets cost %.1f KB each (worker RSS), want under 20", n, per)
	}
	for i := 0; i < n; i += n / 20 {
		echo(socks[i], fmt.Sprintf("after idling %d", i))
	}
}

// Over TLS the socket cannot be parked (crypto/tls buffers what it read):
// a goroutine waits in Read, as before, and everything works the same.
func TestWebSocketTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSigned(t, cert, key)
	s := start(t, nil, "asgi_app:app", "--certfile", cert, "--keyfile", key, "--ws-ping-interval", "100ms", "--ws-ping-timeout", "1s")
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // HTTP/1.1: the upgrade
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "wss://"+s.addr+"/ws/echo", &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		t.Fatalf("dial wss: %v", err)
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)
	for _, m := range []string{"over tls", strings.Repeat("x", 200_000)} {
		if err := c.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
			t.Fatal(err)
		}
		if _, got := read(t, c); got != m {
			t.Errorf("echo of %d bytes: %d", len(m), len(got))
		}
	}
	time.Sleep(500 * time.Millisecond) // pings, answered by the next Read
	if err := c.Write(ctx, websocket.MessageText, []byte("after pings")); err != nil {
		t.Fatal(err)
	}
	if _, got := read(t, c); got != "after pings" {
		t.Errorf("echo after pings: %q", got)
	}
	if err := c.Close(4002, "tls bye"); err != nil {
		t.Errorf("close handshake: %v", err) // the server answers with its close frame
	}
}
