package httpguard

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// guarded serves handler over a guarded loopback listener and returns its
// address.
func guarded(t *testing.T, handler http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: handler, ConnContext: ConnContext, Protocols: &protos, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(Listener(ln))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// checking is a handler that applies Check as a server should, reads the
// body and answers "METHOD PATH BODY".
func checking(seen *[]string, mu *sync.Mutex) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := Check(r)
		if v.Reject != "" {
			w.Header().Set("Connection", "close")
			http.Error(w, "Bad Request: "+v.Reject, http.StatusBadRequest)
			return
		}
		if v.Close {
			w.Header().Set("Connection", "close")
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.Header().Set("Connection", "close")
			code := http.StatusInternalServerError
			if errors.Is(err, ErrChunked) {
				code = http.StatusBadRequest
			}
			http.Error(w, err.Error(), code)
			return
		}
		mu.Lock()
		*seen = append(*seen, r.URL.Path)
		mu.Unlock()
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, body)
	})
}

// exchange writes raw on a new connection (in pieces of `piece` bytes with
// a pause between them when piece > 0) and reads responses until the server
// closes the connection or is quiet for 300 ms.
func exchange(t *testing.T, addr, raw string, piece int) (statuses []int, bodies []string, closed bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() {
		if piece <= 0 {
			io.WriteString(c, raw)
			return
		}
		for len(raw) > 0 {
			n := min(piece, len(raw))
			if _, err := io.WriteString(c, raw[:n]); err != nil {
				return
			}
			raw = raw[n:]
			time.Sleep(2 * time.Millisecond)
		}
	}()
	br := bufio.NewReader(c)
	for {
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			var ne net.Error
			return statuses, bodies, !(errors.As(err, &ne) && ne.Timeout())
		}
		b, _ := io.ReadAll(resp.Body)
		statuses = append(statuses, resp.StatusCode)
		bodies = append(bodies, string(b))
	}
}

func TestConnWithNetHTTP(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	addr := guarded(t, checking(&seen, &mu))
	const h = "Host: x\r\n"
	chunked := "POST /c HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n"
	cases := []struct {
		name     string
		raw      string
		statuses string
		closed   bool
		seen     string // paths that reached the handler's body read
	}{
		{name: "pipelined GETs", raw: "GET /1 HTTP/1.1\r\n" + h + "\r\nGET /2 HTTP/1.1\r\n" + h + "\r\nPOST /3 HTTP/1.1\r\n" + h + "Content-Length: 2\r\n\r\nhi",
			statuses: "[200 200 200]", seen: "/1 /2 /3"},
		{name: "HTTP/1.0 with Transfer-Encoding, smuggling attempt",
			raw:      "POST /first HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n1c\r\nGET /smuggled HTTP/1.0\r\n\r\n",
			statuses: "[400]", closed: true, seen: ""},
		{name: "HTTP/1.0 with Transfer-Encoding after a good request",
			raw:      "GET /ok HTTP/1.1\r\n" + h + "\r\nPOST /te HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
			statuses: "[200 400]", closed: true, seen: "/ok"},
		{name: "OPTIONS * does not shift the verdicts",
			raw:      "OPTIONS * HTTP/1.1\r\n" + h + "\r\nGET /after HTTP/1.1\r\n" + h + "\r\nPOST /te HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: x\r\n\r\n",
			statuses: "[200 200 400]", closed: true, seen: "/after"},
		{name: "whitespace after a chunk size", raw: chunked + "5 \r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n" + h + "\r\n",
			statuses: "[400]", closed: true, seen: ""},
		{name: "whitespace after the last chunk size", raw: chunked + "5\r\nhello\r\n0 \r\n\r\nGET /smuggled HTTP/1.1\r\n" + h + "\r\n",
			statuses: "[400]", closed: true, seen: ""},
		{name: "extension", raw: chunked + "5;e=1\r\nhello\r\n0\r\n\r\nGET /next HTTP/1.1\r\n" + h + "\r\n",
			statuses: "[200 200]", seen: "/c /next"},
		// RFC 9112 allows whitespace before a chunk extension, and so does
		// the guard, but net/http does not (its error is not ErrChunked).
		{name: "extension after whitespace", raw: chunked + "5 ;e=1\r\nhello\r\n0\r\n\r\nGET /next HTTP/1.1\r\n" + h + "\r\n",
			statuses: "[500]", closed: true, seen: ""},
		{name: "invalid Content-Length after a good request", raw: "GET /ok HTTP/1.1\r\n" + h + "\r\nPOST /bad HTTP/1.1\r\n" + h + "Content-Length: 1 2\r\n\r\n12",
			statuses: "[200 400]", closed: true, seen: "/ok"},
		{name: "gave up on a malformed header: net/http answers 400", raw: "GET /x HTTP/1.1\r\n" + h + " folded-first\r\n\r\n",
			statuses: "[400]", closed: true, seen: ""},
	}
	for _, c := range cases {
		for _, piece := range []int{0, 1, 7} {
			t.Run(fmt.Sprintf("%s/pieces of %d", c.name, piece), func(t *testing.T) {
				mu.Lock()
				seen = nil
				mu.Unlock()
				statuses, bodies, closed := exchange(t, addr, c.raw, piece)
				if fmt.Sprint(statuses) != c.statuses || closed != c.closed {
					t.Errorf("statuses %v closed %v, want %s closed %v; bodies %q", statuses, closed, c.statuses, c.closed, bodies)
				}
				time.Sleep(10 * time.Millisecond)
				mu.Lock()
				got := strings.Join(seen, " ")
				mu.Unlock()
				if got != c.seen {
					t.Errorf("the handler served %q, want %q", got, c.seen)
				}
			})
		}
	}
}

// TestConnH2C: HTTP/2 with prior knowledge goes through untouched.
func TestConnH2C(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	addr := guarded(t, checking(&seen, &mu))
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: &http.Transport{Protocols: &p}, Timeout: 5 * time.Second}
	for i := 0; i < 3; i++ {
		resp, err := client.Post("http://"+addr+"/h2", "text/plain", strings.NewReader("body"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || string(b) != "POST /h2 body" {
			t.Fatalf("%s %d %q", resp.Proto, resp.StatusCode, b)
		}
	}
}

// TestClientGone: a half-close is not a departure, a reset is.
func TestClientGone(t *testing.T) {
	type result struct{ gone, half bool }
	results := make(chan result, 1)
	addr := guarded(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
		gone := ClientGone(r)
		results <- result{gone: gone}
		io.WriteString(w, "answer")
	}))
	for _, c := range []struct {
		name string
		end  func(c *net.TCPConn)
		gone bool
	}{
		{name: "half-close", end: func(c *net.TCPConn) { c.CloseWrite() }, gone: false},
		{name: "reset", end: func(c *net.TCPConn) { c.SetLinger(0); c.Close() }, gone: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			time.Sleep(50 * time.Millisecond)
			c.end(conn.(*net.TCPConn))
			select {
			case r := <-results:
				if r.gone != c.gone {
					t.Errorf("ClientGone %v, want %v", r.gone, c.gone)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the handler did not finish")
			}
			if !c.gone {
				conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				b, _ := io.ReadAll(conn)
				if !strings.HasSuffix(string(b), "answer") {
					t.Errorf("the half-closed client got %q", b)
				}
			}
		})
	}
}

// TestConnForwards: sendfile and half-close still reach the socket.
func TestConnForwards(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(io.Discard, c)
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := NewConn(raw)
	defer c.Close()
	if n, err := c.ReadFrom(strings.NewReader("data")); n != 4 || err != nil {
		t.Errorf("ReadFrom: %d %v", n, err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Errorf("CloseWrite: %v", err)
	}
	if _, err := c.Write([]byte("x")); err == nil || !errors.Is(err, syscall.EPIPE) && !strings.Contains(err.Error(), "shutdown") {
		t.Logf("write after CloseWrite: %v", err)
	}
	if Beneath(c) != raw || c.NetConn() != raw {
		t.Error("Beneath/NetConn do not return the wrapped connection")
	}
}

// TestCheck: the verdicts, request by request, for streams fed directly.
func TestCheck(t *testing.T) {
	type call struct {
		method string
		minor  int
		want   string // "ok", "close" or "reject"
	}
	cases := []struct {
		name  string
		in    string
		calls []call
	}{
		{name: "in order", in: "GET / HTTP/1.1\r\n\r\nPOST / HTTP/1.0\r\nContent-Length: 1\r\n\r\nx",
			calls: []call{{"GET", 1, "ok"}, {"POST", 0, "ok"}, {"GET", 1, "close"}}},
		{name: "HTTP/1.0 with Transfer-Encoding", in: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
			calls: []call{{"POST", 0, "reject"}}},
		{name: "OPTIONS * skipped", in: "OPTIONS * HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n",
			calls: []call{{"GET", 1, "ok"}}},
		{name: "faulty OPTIONS * closes after the next", in: "OPTIONS * HTTP/1.0\r\nTransfer-Encoding: x\r\n\r\nGET / HTTP/1.1\r\n\r\n",
			calls: []call{{"GET", 1, "close"}}},
		{name: "another request than parsed", in: "GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n",
			calls: []call{{"PUT", 1, "close"}, {"GET", 1, "close"}}},
		{name: "another version than parsed", in: "GET / HTTP/1.1\r\n\r\n",
			calls: []call{{"GET", 0, "close"}}},
		{name: "a long method", in: "ABCDEFGHIJKLMNOPQRSTUVWXYZ / HTTP/1.1\r\n\r\n",
			calls: []call{{"ABCDEFGHIJKLMNOPQRSTUVWXYZ", 1, "ok"}}},
		{name: "a long method that differs past 16 bytes", in: "ABCDEFGHIJKLMNOPQRSTUVWXYZ / HTTP/1.1\r\n\r\n",
			calls: []call{{"ABCDEFGHIJKLMNOPQRSTUVWXY_", 1, "ok"}}}, // only a prefix is kept: a sanity check, not a proof
		{name: "invalid Content-Length", in: "POST / HTTP/1.1\r\nContent-Length: x\r\n\r\nGET / HTTP/1.1\r\n\r\n",
			calls: []call{{"POST", 1, "close"}, {"GET", 1, "close"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			gc := &Conn{}
			if _, err := gc.p.feed([]byte(c.in)); err != nil {
				t.Fatal(err)
			}
			gc.publish()
			for i, k := range c.calls {
				v := gc.check(k.method, k.minor)
				got := "ok"
				switch {
				case v.Reject != "":
					got = "reject"
				case v.Close:
					got = "close"
				}
				if got != k.want {
					t.Errorf("call %d (%s 1.%d): %s (%+v), want %s", i, k.method, k.minor, got, v, k.want)
				}
			}
		})
	}
}

// TestQueueBounded: a connection that always has requests read ahead does
// not grow its queue.
func TestQueueBounded(t *testing.T) {
	gc := &Conn{}
	req := []byte("GET / HTTP/1.1\r\n\r\n")
	for i := 0; i < 10000; i++ {
		if _, err := gc.p.feed(req); err != nil {
			t.Fatal(err)
		}
		gc.publish()
		if i > 0 { // one request always waiting
			if v := gc.check("GET", 1); v != (Verdict{}) {
				t.Fatalf("request %d: %+v", i, v)
			}
		}
	}
	if cap(gc.queue) > 16 {
		t.Errorf("queue capacity %d after 10000 requests", cap(gc.queue))
	}
}
