package hornbeam_test

// Framing and request targets (issue #11 items 1, 2, 3 and 9), end to end:
// raw bytes over loopback to a server with real workers, counting the
// app's calls (testdata/apps/hostile_count.py) to show what reached it.

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hornbeam-go/hornbeam"
)

// framingCase is one raw exchange: the request is written in pieces (a
// short pause between them), the statuses read back.
type framingCase struct {
	name   string
	pieces []string
	status []int
	fate   hostileFate
	calls  int64  // app calls it must cause
	body   string // a substring of the last response's body, when set
	check  func(t *testing.T, ex hostileExchange)
}

func req(s ...string) []string { return s }

// framingExchange sends the pieces on a new connection and reads up to
// want responses as hostileRoundTrip does.
func framingExchange(t *testing.T, dial func() (net.Conn, error), pieces []string, want int) hostileExchange {
	t.Helper()
	c, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() {
		for _, p := range pieces {
			if _, err := io.WriteString(c, p); err != nil {
				return
			}
			time.Sleep(30 * time.Millisecond)
		}
	}()
	var ex hostileExchange
	br := bufio.NewReader(c)
	for i := 0; ; i++ {
		d := 400 * time.Millisecond
		if i < want {
			d = 5 * time.Second
		}
		c.SetReadDeadline(time.Now().Add(d))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			var ne net.Error
			ex.closed = !(errors.As(err, &ne) && ne.Timeout())
			return ex
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		ex.statuses = append(ex.statuses, resp.StatusCode)
		ex.bodies = append(ex.bodies, string(b))
		ex.headers = append(ex.headers, resp.Header)
	}
}

func runFraming(t *testing.T, s *testServer, cases []framingCase) {
	t.Helper()
	dial := func() (net.Conn, error) { return net.DialTimeout("tcp", hostOf(s), 5*time.Second) }
	if strings.HasPrefix(s.URL, "https:") {
		dial = func() (net.Conn, error) {
			d := &net.Dialer{Timeout: 5 * time.Second}
			return tls.DialWithDialer(d, "tcp", hostOf(s), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := hostileCounter(t, s, "calls")
			smuggledBefore := hostileCounter(t, s, "path:/smuggled")
			ex := framingExchange(t, dial, c.pieces, max(len(c.status), 1))
			if fmt.Sprint(ex.statuses) != fmt.Sprint(c.status) {
				t.Errorf("statuses %v, want %v; bodies %.300q", ex.statuses, c.status, ex.bodies)
			}
			switch {
			case c.fate == hostileMustClose && !ex.closed:
				t.Errorf("the connection was kept open; it must be closed")
			case c.fate == hostileMustKeep && ex.closed:
				t.Errorf("the connection was closed; it should be kept alive")
			}
			if c.body != "" && (len(ex.bodies) == 0 || !strings.Contains(ex.bodies[len(ex.bodies)-1], c.body)) {
				t.Errorf("bodies %q, want the last to contain %q", ex.bodies, c.body)
			}
			time.Sleep(20 * time.Millisecond) // a late call would show
			if calls := hostileCounter(t, s, "calls") - before; calls != c.calls {
				t.Errorf("the app was called %d times, want %d", calls, c.calls)
			}
			if n := hostileCounter(t, s, "path:/smuggled") - smuggledBefore; n != 0 {
				t.Errorf("a smuggled request reached the app %d times", n)
			}
			if c.check != nil && len(ex.bodies) >= len(c.status) {
				c.check(t, ex)
			}
		})
	}
	if ex := framingExchange(t, dial, req("GET /alive HTTP/1.1\r\nHost: x\r\n\r\n"), 1); fmt.Sprint(ex.statuses) != "[200]" {
		t.Errorf("afterwards: %v", ex.statuses)
	}
}

func framingServer(t *testing.T) *testServer {
	return start(t, "hostile_count", hornbeam.Options{Workers: 1, Keepalive: 30 * time.Second, ReadHeaderTimeout: 3 * time.Second})
}

// TestFramingHTTP10TransferEncoding (item 1): net/http drops
// Transfer-Encoding from HTTP/1.0 requests and frames them by
// Content-Length; RFC 9112 6.1 makes them faulty framing: 400, closed,
// never passed to the app.
func TestFramingHTTP10TransferEncoding(t *testing.T) {
	s := framingServer(t)
	const bad = "Bad Request: Transfer-Encoding in an HTTP/1.0 request"
	runFraming(t, s, []framingCase{
		{name: "smuggling with keep-alive, Content-Length and chunked",
			pieces: req("POST /first HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n1c\r\nGET /smuggled HTTP/1.0\r\n\r\n"),
			status: []int{400}, fate: hostileMustClose, body: bad},
		{name: "plain chunked POST",
			pieces: req("POST /c HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
			status: []int{400}, fate: hostileMustClose, body: bad},
		{name: "Transfer-Encoding identity", pieces: req("POST /c HTTP/1.0\r\nTransfer-Encoding: identity\r\nContent-Length: 2\r\n\r\nhi"),
			status: []int{400}, fate: hostileMustClose, body: bad},
		{name: "lower-case and folded", pieces: req("POST /c HTTP/1.0\r\ntransfer-encoding:\r\n chunked\r\n\r\n0\r\n\r\n"),
			status: []int{400}, fate: hostileMustClose, body: bad},
		{name: "header split across writes", pieces: req("POST /c HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Enc", "oding: chunked\r\nContent-Length: 0\r\n\r\n"),
			status: []int{400}, fate: hostileMustClose, body: bad},
		{name: "after a good request on a keep-alive connection",
			pieces: req("GET /ok HTTP/1.0\r\nConnection: keep-alive\r\n\r\nPOST /te HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n"),
			status: []int{200, 400}, fate: hostileMustClose, calls: 1, body: bad},
		{name: "after OPTIONS *, which net/http answers itself",
			pieces: req("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\nPOST /te HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
			status: []int{200, 400}, fate: hostileMustClose, body: bad},
		// Not faulty:
		{name: "HTTP/1.0 with Content-Length", pieces: req("POST /cl HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\nhello"),
			status: []int{200}, fate: hostileMustKeep, calls: 1, body: `"body": "hello"`},
		{name: "HTTP/1.1 chunked", pieces: req("POST /c11 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
			status: []int{200}, fate: hostileMustClose, calls: 1, body: `"body": "hello"`},
	})
}

// TestFramingRequestTarget (item 2): RFC 9112 3.2. Authority-form only for
// CONNECT, absolute-form only http(s) with a valid authority, * only for
// OPTIONS, never a fragment.
func TestFramingRequestTarget(t *testing.T) {
	s := framingServer(t)
	bad := func(name, target string) framingCase {
		method, target, _ := strings.Cut(target, " ")
		return framingCase{name: name, pieces: req(method + " " + target + " HTTP/1.1\r\nHost: x\r\n\r\n"),
			status: []int{400}, fate: hostileMustClose, body: "Bad Request"}
	}
	good := func(name, target, path, query, host string) framingCase {
		method, target, _ := strings.Cut(target, " ")
		return framingCase{name: name, pieces: req(method + " " + target + " HTTP/1.1\r\nHost: x\r\n\r\n"),
			status: []int{200}, fate: hostileMustKeep, calls: 1,
			check: hostileEchoCheck(func(t *testing.T, e hostileEcho) {
				if e.Path != path || e.Query != query || e.Headers["HTTP_HOST"] != host {
					t.Errorf("PATH_INFO %q QUERY_STRING %q HTTP_HOST %q, want %q %q %q", e.Path, e.Query, e.Headers["HTTP_HOST"], path, query, host)
				}
			})}
	}
	runFraming(t, s, []framingCase{
		bad("authority-form on GET", "GET example.com:443"),
		bad("scheme s with a bracket authority", "PUT s://]ufd/:"),
		bad("scheme x without authority", "GET x:/admin"),
		bad("fragment in the query", "GET /p?page=1#frag"),
		bad("fragment in the path", "GET /p#frag"),
		bad("ftp URI", "GET ftp://example.com/x"),
		bad("http URI without authority", "GET http:/x"),
		bad("http URI with an empty host", "GET http:///x"),
		bad("http URI with userinfo", "GET http://user@example.com/x"),
		bad("http URI with an empty port", "GET http://example.com:/x"),
		bad("http URI with a bracket in the host", "GET http://]ufd/"),
		bad("http URI with an IPv6 zone", "GET http://[fe80::1%25eth0]/x"),
		bad("asterisk on GET", "GET *"),
		bad("CONNECT with a path", "CONNECT /x"),
		bad("CONNECT without a port", "CONNECT example.com"),
		good("origin-form", "GET /ok?a=b", "/ok", "a=b", "x"),
		good("absolute-form, scheme in capitals", "GET HTTP://Example.com/abs?x=1", "/abs", "x=1", "Example.com"),
		good("absolute-form https with port", "GET https://example.com:8443/abs", "/abs", "", "example.com:8443"),
		good("absolute-form IPv6", "GET http://[::1]:8080/abs", "/abs", "", "[::1]:8080"),
		good("absolute-form IPv4", "GET http://127.0.0.1/abs", "/abs", "", "127.0.0.1"),
		{name: "OPTIONS * is answered by the server", pieces: req("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"), status: []int{200}, fate: hostileMustKeep},
		{name: "CONNECT with host:port reaches the app", pieces: req("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"),
			status: []int{200}, fate: hostileAnyFate, calls: 1},
	})
}

// TestFramingChunkSize (item 3): a chunk size is hex digits only;
// whitespace after it (which net/http trims) is refused: 400, closed, and
// nothing after it is read as a request.
func TestFramingChunkSize(t *testing.T) {
	s := framingServer(t)
	head := "POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	smuggled := "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	runFraming(t, s, []framingCase{
		{name: "space after the size", pieces: req(head + "5 \r\nhello\r\n0\r\n\r\n"), status: []int{400}, fate: hostileMustClose, body: "chunk"},
		{name: "tab after the size", pieces: req(head + "5\t\r\nhello\r\n0\r\n\r\n"), status: []int{400}, fate: hostileMustClose, body: "chunk"},
		{name: "space after the last size, then a request", pieces: req(head + "5\r\nhello\r\n0 \r\n\r\n" + smuggled), status: []int{400}, fate: hostileMustClose, body: "chunk"},
		{name: "space after a later size", pieces: req(head + "5\r\nhello\r\n3  \r\nabc\r\n0\r\n\r\n"), status: []int{400}, fate: hostileMustClose, body: "chunk"},
		{name: "size and its whitespace in separate writes", pieces: req(head+"5 ", "\r\nhello\r\n0\r\n\r\n"), status: []int{400}, fate: hostileMustClose, body: "chunk"},
		{name: "after a good pipelined request", pieces: req("GET /ok HTTP/1.1\r\nHost: x\r\n\r\n" + head + "0 \r\n\r\n" + smuggled),
			status: []int{200, 400}, fate: hostileMustClose, calls: 1, body: "chunk"},
		{name: "extension (accepted)", pieces: req(head + "5;ext=1\r\nhello\r\n0\r\n\r\n"), status: []int{200}, fate: hostileMustClose, calls: 1, body: `"body": "hello"`},
		{name: "in pieces (accepted)", pieces: req(head+"5", "\r\nhel", "lo\r\n0", "\r\n\r\n"), status: []int{200}, fate: hostileMustClose, calls: 1, body: `"body": "hello"`},
		// RFC 9112 7.1.1 allows whitespace before ';', and so does the
		// guard; net/http itself refuses it (its parser reads "5 " as the
		// size), and the server answers its error with 400.
		{name: "whitespace before an extension (refused by net/http)", pieces: req(head + "5 ;ext=1\r\nhello\r\n0\r\n\r\n"), status: []int{400}, fate: hostileMustClose, body: "chunk"},
	})
}

// TestFramingTLS: the same checks for HTTP/1.x over TLS.
func TestFramingTLS(t *testing.T) {
	cert, key := selfSigned(t)
	s := start(t, "hostile_count", hornbeam.Options{Workers: 1, CertFile: cert, KeyFile: key, Keepalive: 30 * time.Second})
	head := "POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	runFraming(t, s, []framingCase{
		{name: "pipelined", pieces: req("GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"),
			status: []int{200, 200}, fate: hostileMustKeep, calls: 2, body: `"body": "hi"`},
		{name: "HTTP/1.0 with Transfer-Encoding",
			pieces: req("POST /first HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n1c\r\nGET /smuggled HTTP/1.0\r\n\r\n"),
			status: []int{400}, fate: hostileMustClose, body: "Transfer-Encoding in an HTTP/1.0 request"},
		{name: "whitespace after a chunk size", pieces: req(head + "0 \r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"),
			status: []int{400}, fate: hostileMustClose, body: "chunk"},
		{name: "authority-form target", pieces: req("GET example.com:443 HTTP/1.1\r\nHost: x\r\n\r\n"),
			status: []int{400}, fate: hostileMustClose, body: "Bad Request"},
	})
}

// framingHalfClose sends raw, shuts down the sending side and reads all
// that comes back.
func framingHalfClose(t *testing.T, addr, raw string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, raw)
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	out, _ := io.ReadAll(c)
	return string(out)
}

// responses parses out as a sequence of responses: status and body each.
func responses(out string) (statuses []int, bodies []string) {
	br := bufio.NewReader(strings.NewReader(out))
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return
		}
		b, _ := io.ReadAll(resp.Body)
		statuses = append(statuses, resp.StatusCode)
		bodies = append(bodies, string(b))
	}
}

// TestFramingHalfClose (item 9): a client that shuts down its sending side
// after its request (shutdown(SHUT_WR), `nc -N`) still gets the response,
// and the access log has its status.
func TestFramingHalfClose(t *testing.T) {
	accessLog := &syncBuffer{}
	s := start(t, "hostile_count", hornbeam.Options{Workers: 1, AccessLog: accessLog})
	addr := hostOf(s)
	cases := []struct {
		name  string
		raw   string
		paths []string
		busy  bool // the only worker is busy when the request comes
	}{
		{name: "quick", raw: "GET /half HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", paths: []string{"/half"}},
		{name: "slow app", raw: "GET /half-slow?sleep=0.3 HTTP/1.1\r\nHost: x\r\n\r\n", paths: []string{"/half-slow"}},
		{name: "queued behind another request", raw: "GET /half-queued HTTP/1.1\r\nHost: x\r\n\r\n", paths: []string{"/half-queued"}, busy: true},
		{name: "POST with a body", raw: "POST /half-post?sleep=0.2 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", paths: []string{"/half-post"}},
		{name: "HTTP/1.0", raw: "GET /half10?sleep=0.2 HTTP/1.0\r\n\r\n", paths: []string{"/half10"}},
		{name: "two pipelined", raw: "GET /half-p1?sleep=0.2 HTTP/1.1\r\nHost: x\r\n\r\nGET /half-p2?sleep=0.1 HTTP/1.1\r\nHost: x\r\n\r\n", paths: []string{"/half-p1", "/half-p2"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			busy := make(chan struct{})
			if c.busy {
				go func() {
					defer close(busy)
					get(t, s.URL+"/busy?sleep=0.5")
				}()
				time.Sleep(100 * time.Millisecond)
			} else {
				close(busy)
			}
			out := framingHalfClose(t, addr, c.raw)
			<-busy
			statuses, bodies := responses(out)
			if len(statuses) != len(c.paths) {
				t.Fatalf("%d responses, want %d: %q", len(statuses), len(c.paths), out)
			}
			for i, p := range c.paths {
				if statuses[i] != 200 || !strings.Contains(bodies[i], `"path": "`+p+`"`) {
					t.Errorf("response %d: %d %q, want the app's answer for %s", i, statuses[i], bodies[i], p)
				}
			}
			for _, p := range c.paths {
				waitFor(t, 2*time.Second, "the access log line for "+p, func() bool { return strings.Contains(accessLog.String(), p) })
				for _, line := range strings.Split(accessLog.String(), "\n") {
					if strings.Contains(line, " "+p) && !strings.Contains(line, `" 200 `) {
						t.Errorf("access log: %s", line)
					}
				}
			}
		})
	}
}

// TestFramingHalfCloseTLS (item 9): the same over TLS, with close_notify
// and a TCP half-close.
func TestFramingHalfCloseTLS(t *testing.T) {
	cert, key := selfSigned(t)
	s := start(t, "hostile_count", hornbeam.Options{Workers: 1, CertFile: cert, KeyFile: key})
	for _, tcpToo := range []bool{false, true} {
		t.Run(fmt.Sprintf("TCP half-close too: %v", tcpToo), func(t *testing.T) {
			c, err := tls.Dial("tcp", hostOf(s), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, "GET /half-tls?sleep=0.2 HTTP/1.1\r\nHost: x\r\n\r\n")
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if tcpToo {
				c.NetConn().(*net.TCPConn).CloseWrite()
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			out, _ := io.ReadAll(c)
			statuses, bodies := responses(string(out))
			if len(statuses) != 1 || statuses[0] != 200 || !strings.Contains(bodies[0], `"path": "/half-tls"`) {
				t.Errorf("got %v %q", statuses, out)
			}
		})
	}
}

// TestFramingVanishedClient (item 9): a client that is really gone still
// frees its worker. A reset client's queued request never runs; a client
// that closed (FIN) while the app ran does not hold the worker past the
// app's end.
func TestFramingVanishedClient(t *testing.T) {
	s := start(t, "hostile_count", hornbeam.Options{Workers: 1})
	addr := hostOf(s)
	// The worker takes two requests (threads+1): the third waits in Go.
	busy := make(chan int, 2)
	for _, path := range []string{"/busy?sleep=0.6", "/busy?sleep=0.6"} {
		go func() {
			code, _ := get(t, s.URL+path)
			busy <- code
		}()
	}
	time.Sleep(200 * time.Millisecond)

	// Queued behind them, then reset.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /vanished HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(100 * time.Millisecond)
	if s.Embedded() {
		// No queue in the master: the worker took the connection and the
		// request waits there for a Python thread, counted in its inflight.
		waitFor(t, 2*time.Second, "the worker to hold the two busy requests and the queued one", func() bool {
			st := s.Stats()
			return st.QueueDepth == 0 && len(st.Workers) == 1 && st.Workers[0].Inflight == 3
		})
	} else if q := s.Stats().QueueDepth; q != 1 {
		t.Fatalf("queue depth %d, want the request queued in Go", q)
	}
	c.(*net.TCPConn).SetLinger(0)
	c.Close()

	for range 2 {
		if code := <-busy; code != 200 {
			t.Fatalf("a busy request: %d", code)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if n := hostileCounter(t, s, "path:/vanished"); n != 0 {
		t.Errorf("the reset client's queued request ran %d times", n)
	}

	// Closed (FIN) while its request runs: the worker is free right after.
	c, err = net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /closed?sleep=0.5 HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(100 * time.Millisecond)
	c.Close()
	t0 := time.Now()
	if code, _ := get(t, s.URL+"/after"); code != 200 {
		t.Errorf("after the closed client: %d", code)
	}
	if d := time.Since(t0); d > 3*time.Second {
		t.Errorf("the next request waited %s", d)
	}
	if n := hostileCounter(t, s, "path:/closed"); n != 1 {
		t.Errorf("/closed ran %d times", n)
	}
	if st := s.Stats(); st.Restarts != 0 {
		t.Errorf("%d workers restarted", st.Restarts)
	}
}
