package hornbeam_test

// Hostile input and faults: nothing crashes, nothing leaks, nothing is lost.
//
// TestHostileRequests sends a corpus of malformed and ambiguous HTTP/1.x
// requests over raw TCP and checks, for each, the status sent, whether the
// connection is closed afterwards and - crucially - how many times the app
// was called (testdata/apps/hostile_count.py counts its calls in the shared
// state). The other tests are faults: slow clients, a worker killed under
// load, an app flooding its stdout, an app reading a body it was not sent.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hornbeam-go/hornbeam"
)

// hostileFate says what must happen to the connection after the responses.
type hostileFate int

const (
	hostileAnyFate   hostileFate = iota // either is acceptable
	hostileMustClose                    // the server closes it
	hostileMustKeep                     // keep-alive: it stays open
)

func (f hostileFate) String() string {
	return [...]string{"either", "closed", "kept open"}[f]
}

// hostileExchange is what came back for one raw request.
type hostileExchange struct {
	statuses []int
	bodies   []string
	headers  []http.Header
	closed   bool  // the server closed the connection (EOF or reset)
	err      error // the error that ended reading, if not a timeout
}

// hostileRoundTrip writes req on a new connection and reads responses: the first
// `want` with a generous deadline, then any further ones with a short one.
// It reports whether the server closed the connection afterwards (a read
// timeout means it kept it open).
func hostileRoundTrip(t *testing.T, addr, req string, want int) hostileExchange {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() {
		// In a goroutine: a server that rejects early may stop reading a
		// large request.
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, req)
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
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				// still open
			case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
				ex.closed = true
			default:
				ex.closed = true
				ex.err = err
			}
			return ex
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		ex.statuses = append(ex.statuses, resp.StatusCode)
		ex.bodies = append(ex.bodies, string(b))
		ex.headers = append(ex.headers, resp.Header)
		if err != nil {
			ex.closed = true
			ex.err = err
			return ex
		}
		if resp.Close && i+1 >= want {
			// Connection: close: the server must now close; check it does.
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, err := br.ReadByte(); err != nil {
				var ne net.Error
				ex.closed = !(errors.As(err, &ne) && ne.Timeout())
			}
			return ex
		}
	}
}

// hostileCounter reads an integer from the shared state (0 when absent).
func hostileCounter(t *testing.T, s *testServer, key string) int64 {
	t.Helper()
	v, ok, err := s.StateGet(key)
	if err != nil {
		t.Fatalf("StateGet(%q): %v", key, err)
	}
	if !ok {
		return 0
	}
	n, _ := v.(int64)
	return n
}

// hostileEcho is hostile_count.py's JSON echo.
type hostileEcho struct {
	N             int64             `json:"n"`
	Method        string            `json:"method"`
	Path          string            `json:"path"`
	Query         string            `json:"query"`
	RawURI        string            `json:"raw_uri"`
	Protocol      string            `json:"protocol"`
	ContentLength *string           `json:"content_length"`
	Body          string            `json:"body"`
	Headers       map[string]string `json:"headers"`
}

func decodeHostileEcho(t *testing.T, body string) hostileEcho {
	t.Helper()
	var e hostileEcho
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("decoding the app's echo: %v: %q", err, body)
	}
	return e
}

// latin1 turns bytes into the str PEP 3333 makes of them (each byte one
// code point), as JSON hands it back.
func hostileLatin1(b string) string {
	r := make([]rune, len(b))
	for i := 0; i < len(b); i++ {
		r[i] = rune(b[i])
	}
	return string(r)
}

type hostileCase struct {
	name   string
	req    string
	status []int       // statuses expected, in order (nil: no response at all)
	fate   hostileFate // what happens to the connection afterwards
	calls  int64       // app calls the request must cause
	check  func(t *testing.T, ex hostileExchange)
}

const hostileHost = "Host: x\r\n"

func hostileHeaderLines(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "X-F%d: v\r\n", i)
	}
	return b.String()
}

// requestLine builds "GET /aaa... HTTP/1.1" of exactly n bytes (CRLF excluded).
func hostileRequestLine(n int) string {
	return "GET /" + strings.Repeat("a", n-len("GET / HTTP/1.1")) + " HTTP/1.1"
}

func hostileChunked(body string, chunk int) string {
	var b strings.Builder
	for len(body) > 0 {
		k := min(chunk, len(body))
		fmt.Fprintf(&b, "%x\r\n%s\r\n", k, body[:k])
		body = body[k:]
	}
	b.WriteString("0\r\n\r\n")
	return b.String()
}

// hostileEchoCheck decodes the single response and runs f on it.
func hostileEchoCheck(f func(t *testing.T, e hostileEcho)) func(t *testing.T, ex hostileExchange) {
	return func(t *testing.T, ex hostileExchange) {
		t.Helper()
		f(t, decodeHostileEcho(t, ex.bodies[0]))
	}
}

func TestHostileRequests(t *testing.T) {
	s := start(t, "hostile_count", hornbeam.Options{
		Workers:           2,
		MaxBodySize:       1000,
		Keepalive:         30 * time.Second, // so that "kept open" is not the idle timeout's doing
		ReadHeaderTimeout: 3 * time.Second,
	})
	addr := hostOf(s)
	big := strings.Repeat("b", 1500)
	cases := []hostileCase{
		// --- request lines
		{name: "garbage request line", req: "THIS IS NOT HTTP\r\n\r\n", status: []int{400}, fate: hostileMustClose},
		{name: "empty method", req: " / HTTP/1.1\r\n" + hostileHost + "\r\n", status: []int{400}, fate: hostileMustClose},
		{name: "invalid method G(T", req: "G(T / HTTP/1.1\r\n" + hostileHost + "\r\n", status: []int{400}, fate: hostileMustClose},
		{name: "invalid method with NUL", req: "G\x00T / HTTP/1.1\r\n" + hostileHost + "\r\n", status: []int{400}, fate: hostileMustClose},
		{name: "version HTTP 9.9", req: "GET / HTTP/9.9\r\n" + hostileHost + "\r\n", status: []int{505}, fate: hostileMustClose},
		{name: "version HTTP 1.x", req: "GET / HTTP/1.x\r\n" + hostileHost + "\r\n", status: []int{400}, fate: hostileMustClose},
		{name: "version HTTP 2.0 in clear text", req: "GET / HTTP/2.0\r\n" + hostileHost + "\r\n", status: []int{505}, fate: hostileMustClose},
		{name: "version lower case", req: "GET / http/1.1\r\n" + hostileHost + "\r\n", status: []int{400}, fate: hostileMustClose},
		{name: "two spaces in request line", req: "GET  / HTTP/1.1\r\n" + hostileHost + "\r\n", status: []int{400}, fate: hostileMustClose},
		{name: "NUL in request target", req: "GET /a\x00b HTTP/1.1\r\n" + hostileHost + "\r\n", status: []int{400}, fate: hostileMustClose},
		{name: "CR without LF ends the request line", req: "GET / HTTP/1.1\rHost: x\r\n\r\n", status: []int{400}, fate: hostileMustClose},
		// HTTP/0.9. With h2c enabled, Go's server first waits for 14 bytes
		// (to look for the "PRI * HTTP/2.0" preface): a shorter request is
		// answered (400) only when the read-header timeout (3 s here,
		// 10 s by default) ends that wait.
		{name: "HTTP 0.9 simple request", req: "GET /\r\n", status: nil, fate: hostileMustClose,
			check: func(t *testing.T, ex hostileExchange) {
				if len(ex.statuses) > 0 && ex.statuses[0] != 400 {
					t.Errorf("statuses %v, want 400 or none", ex.statuses)
				}
				t.Logf("HTTP/0.9 %q: statuses %v, closed %v", "GET /\r\n", ex.statuses, ex.closed)
			}},
		{name: "HTTP 0.9 request of 14 bytes or more", req: "GET /index.html\r\n", status: []int{400}, fate: hostileMustClose},
		{name: "HTTP 1.1 without Host", req: "GET / HTTP/1.1\r\n\r\n", status: []int{400}, fate: hostileMustClose},
		{name: "two Host headers", req: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", status: []int{400}, fate: hostileMustClose},
		{name: "invalid percent-encoding in path", req: "GET /a%zz HTTP/1.1\r\n" + hostileHost + "\r\n", status: []int{400}, fate: hostileMustClose},

		// --- header fields
		{name: "header name with a space", req: "GET / HTTP/1.1\r\n" + hostileHost + "Bad Name: v\r\n\r\n", status: []int{400}, fate: hostileMustClose},
		{name: "space before the colon", req: "GET / HTTP/1.1\r\n" + hostileHost + "X-A : v\r\n\r\n", status: []int{400}, fate: hostileMustClose},
		{name: "control character in header name", req: "GET / HTTP/1.1\r\n" + hostileHost + "X-\x01A: v\r\n\r\n", status: []int{400}, fate: hostileMustClose},
		{name: "NUL in header name", req: "GET / HTTP/1.1\r\n" + hostileHost + "X-\x00A: v\r\n\r\n", status: []int{400}, fate: hostileMustClose},
		{name: "NUL in header value", req: "GET / HTTP/1.1\r\n" + hostileHost + "X-A: a\x00b\r\n\r\n", status: []int{400}, fate: hostileMustClose},
		{name: "CR without LF in header value", req: "GET / HTTP/1.1\r\n" + hostileHost + "X-A: a\rX-B: b\r\n\r\n", status: []int{400}, fate: hostileMustClose},
		{name: "header line without colon", req: "GET / HTTP/1.1\r\n" + hostileHost + "NoColon\r\n\r\n", status: []int{400}, fate: hostileMustClose},
		{name: "whitespace before the first header", req: "GET / HTTP/1.1\r\n Host: x\r\n\r\n", status: []int{400}, fate: hostileMustClose},
		// obs-fold (RFC 9112 5.2): a server must reject it with 400 or
		// replace each fold by a space before passing the value on. Go
		// does the latter.
		{name: "obs-fold continuation line", req: "GET /fold HTTP/1.1\r\n" + hostileHost + "X-A: a\r\n  folded\r\n\r\n", status: []int{200}, fate: hostileMustKeep, calls: 1,
			check: hostileEchoCheck(func(t *testing.T, e hostileEcho) {
				if v := e.Headers["HTTP_X_A"]; v != "a folded" {
					t.Errorf("HTTP_X_A %q, want the fold replaced by a space", v)
				}
			})},
		// RFC 9112 2.2 lets a server accept a bare LF as a line end.
		{name: "bare LF line ends (accepted)", req: "GET /lf HTTP/1.1\n" + hostileHost[:len(hostileHost)-2] + "\n\n", status: []int{200}, fate: hostileMustKeep, calls: 1,
			check: hostileEchoCheck(func(t *testing.T, e hostileEcho) {
				if e.Path != "/lf" {
					t.Errorf("PATH_INFO %q", e.Path)
				}
			})},

		// --- Content-Length and Transfer-Encoding
		{name: "two different Content-Length", req: "POST / HTTP/1.1\r\n" + hostileHost + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", status: []int{400}, fate: hostileMustClose},
		{name: "two equal Content-Length (accepted)", req: "POST /cl2 HTTP/1.1\r\n" + hostileHost + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", status: []int{200}, fate: hostileMustKeep, calls: 1,
			check: hostileEchoCheck(func(t *testing.T, e hostileEcho) {
				if e.Body != "hello" || e.ContentLength == nil || *e.ContentLength != "5" {
					t.Errorf("body %q, CONTENT_LENGTH %v", e.Body, e.ContentLength)
				}
			})},
		{name: "Content-Length list 5, 5", req: "POST / HTTP/1.1\r\n" + hostileHost + "Content-Length: 5, 5\r\n\r\nhello", status: []int{400}, fate: hostileMustClose},
		{name: "Content-Length with sign", req: "POST / HTTP/1.1\r\n" + hostileHost + "Content-Length: +5\r\n\r\nhello", status: []int{400}, fate: hostileMustClose},
		{name: "negative Content-Length", req: "POST / HTTP/1.1\r\n" + hostileHost + "Content-Length: -1\r\n\r\n", status: []int{400}, fate: hostileMustClose},
		{name: "Content-Length overflowing int64", req: "POST / HTTP/1.1\r\n" + hostileHost + "Content-Length: 99999999999999999999\r\n\r\n", status: []int{400}, fate: hostileMustClose},
		// Request smuggling, CL.TE: a front end going by Content-Length
		// would see one request; going by Transfer-Encoding the body ends
		// at "0\r\n\r\n" and "GET /smuggled" follows. RFC 9112 6.1: a
		// server may process such a request by Transfer-Encoding alone but
		// MUST close the connection after responding, so the smuggled
		// request is never read.
		{name: "Content-Length with chunked (smuggling)",
			req:    "POST /first HTTP/1.1\r\n" + hostileHost + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n" + hostileHost + "\r\n",
			status: []int{200}, fate: hostileMustClose, calls: 1,
			check: func(t *testing.T, ex hostileExchange) {
				if len(ex.bodies) > 1 {
					t.Errorf("the smuggled request was answered as a separate request: %q", ex.bodies[1])
				}
			}},
		// The reverse order of the two headers changes nothing.
		{name: "chunked with Content-Length (smuggling, TE first)",
			req:    "POST /first HTTP/1.1\r\n" + hostileHost + "Transfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n" + hostileHost + "\r\n",
			status: []int{200}, fate: hostileMustClose, calls: 1},
		{name: "two Transfer-Encoding fields", req: "POST / HTTP/1.1\r\n" + hostileHost + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: []int{501}, fate: hostileMustClose},
		{name: "Transfer-Encoding gzip, chunked", req: "POST / HTTP/1.1\r\n" + hostileHost + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", status: []int{501}, fate: hostileMustClose},
		{name: "Transfer-Encoding xchunked", req: "POST / HTTP/1.1\r\n" + hostileHost + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", status: []int{501}, fate: hostileMustClose},
		{name: "Transfer-Encoding with space before colon", req: "POST / HTTP/1.1\r\n" + hostileHost + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", status: []int{400}, fate: hostileMustClose},
		// HTTP/1.0 has no chunked coding: the body is empty and the
		// connection closes, so the "chunks" (hiding a request) are never
		// parsed as one.
		{name: "chunked on HTTP 1.0 is faulty framing (RFC 9112 6.1)",
			req:    "POST /http10 HTTP/1.0\r\n" + hostileHost + "Transfer-Encoding: chunked\r\n\r\n" + hostileChunked("GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", 64),
			status: []int{400}, fate: hostileMustClose, calls: 0},
		{name: "invalid chunk size zz", req: "POST / HTTP/1.1\r\n" + hostileHost + "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", status: []int{400}, fate: hostileMustClose},
		{name: "chunk size overflow", req: "POST / HTTP/1.1\r\n" + hostileHost + "Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\nhello\r\n0\r\n\r\n", status: []int{400}, fate: hostileMustClose},
		{name: "negative chunk size", req: "POST / HTTP/1.1\r\n" + hostileHost + "Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", status: []int{400}, fate: hostileMustClose},
		{name: "chunk data longer than its size", req: "POST / HTTP/1.1\r\n" + hostileHost + "Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n", status: []int{400}, fate: hostileMustClose},
		// Every chunked request closes its connection after the answer:
		// net/http drops a Content-Length sent beside Transfer-Encoding, so
		// the server cannot tell such a request apart (RFC 9112 6.1).
		{name: "chunk extension (accepted)", req: "POST /ext HTTP/1.1\r\n" + hostileHost + "Transfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6;a=\"q\";b\r\n world\r\n0;last\r\n\r\n", status: []int{200}, fate: hostileMustClose, calls: 1,
			check: hostileEchoCheck(func(t *testing.T, e hostileEcho) {
				if e.Body != "hello world" || e.ContentLength == nil || *e.ContentLength != "11" {
					t.Errorf("body %q, CONTENT_LENGTH %v", e.Body, e.ContentLength)
				}
			})},
		{name: "trailers (accepted)", req: "POST /trailer HTTP/1.1\r\n" + hostileHost + "Transfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 42\r\n\r\n", status: []int{200}, fate: hostileMustClose, calls: 1,
			check: hostileEchoCheck(func(t *testing.T, e hostileEcho) {
				if e.Body != "hello" {
					t.Errorf("body %q", e.Body)
				}
			})},

		// --- request targets
		{name: "absolute-form URI", req: "GET http://example.com/abs/path?x=1 HTTP/1.1\r\nHost: other\r\n\r\n", status: []int{200}, fate: hostileMustKeep, calls: 1,
			check: hostileEchoCheck(func(t *testing.T, e hostileEcho) {
				if e.Path != "/abs/path" || e.Query != "x=1" {
					t.Errorf("PATH_INFO %q QUERY_STRING %q, want /abs/path and x=1", e.Path, e.Query)
				}
				// RFC 9112 3.2.2: the authority of an absolute-form target
				// replaces the Host header.
				if e.Headers["HTTP_HOST"] != "example.com" {
					t.Errorf("HTTP_HOST %q, want example.com", e.Headers["HTTP_HOST"])
				}
				t.Logf("absolute-form: PATH_INFO %q RAW_URI %q HTTP_HOST %q", e.Path, e.RawURI, e.Headers["HTTP_HOST"])
			})},
		// Reported, not judged: the server passes dot segments through (as
		// gunicorn does); the app must not map PATH_INFO to files naively.
		{name: "dot-dot segments in path", req: "GET /a/../../etc/passwd HTTP/1.1\r\n" + hostileHost + "\r\n", status: []int{200}, fate: hostileMustKeep, calls: 1,
			check: hostileEchoCheck(func(t *testing.T, e hostileEcho) {
				if e.Path != "/a/../../etc/passwd" {
					t.Errorf("PATH_INFO %q", e.Path)
				}
				t.Logf("dot segments: PATH_INFO %q RAW_URI %q", e.Path, e.RawURI)
			})},
		{name: "percent-encoded dot-dot", req: "GET /a/%2e%2e/b HTTP/1.1\r\n" + hostileHost + "\r\n", status: []int{200}, fate: hostileMustKeep, calls: 1,
			check: hostileEchoCheck(func(t *testing.T, e hostileEcho) {
				t.Logf("encoded dot segments: PATH_INFO %q RAW_URI %q", e.Path, e.RawURI)
			})},
		// PEP 3333 / CGI: PATH_INFO is decoded, so %2F becomes a slash;
		// RAW_URI keeps the distinction.
		{name: "percent-encoded slash", req: "GET /a%2Fb/c HTTP/1.1\r\n" + hostileHost + "\r\n", status: []int{200}, fate: hostileMustKeep, calls: 1,
			check: hostileEchoCheck(func(t *testing.T, e hostileEcho) {
				if e.Path != "/a/b/c" || e.RawURI != "/a%2Fb/c" {
					t.Errorf("PATH_INFO %q RAW_URI %q", e.Path, e.RawURI)
				}
				t.Logf("%%2F: PATH_INFO %q RAW_URI %q", e.Path, e.RawURI)
			})},
		{name: "percent-encoded NUL in path", req: "GET /a%00b HTTP/1.1\r\n" + hostileHost + "\r\n", status: nil, fate: hostileAnyFate, calls: -1,
			check: func(t *testing.T, ex hostileExchange) {
				if len(ex.statuses) == 1 && ex.statuses[0] == 200 {
					t.Logf("%%00: PATH_INFO %q", decodeHostileEcho(t, ex.bodies[0]).Path)
				} else {
					t.Logf("%%00: statuses %v", ex.statuses)
				}
			}},
		{name: "non-UTF-8 bytes in query string", req: "GET /q?a=\xff\xfe\x80&b=caf\xe9 HTTP/1.1\r\n" + hostileHost + "\r\n", status: []int{200}, fate: hostileMustKeep, calls: 1,
			check: hostileEchoCheck(func(t *testing.T, e hostileEcho) {
				if want := hostileLatin1("a=\xff\xfe\x80&b=caf\xe9"); e.Query != want {
					t.Errorf("QUERY_STRING %q, want %q (the bytes as latin-1)", e.Query, want)
				}
			})},
		{name: "non-UTF-8 bytes in path", req: "GET /caf\xe9 HTTP/1.1\r\n" + hostileHost + "\r\n", status: []int{200}, fate: hostileMustKeep, calls: 1,
			check: hostileEchoCheck(func(t *testing.T, e hostileEcho) {
				if want := hostileLatin1("/caf\xe9"); e.Path != want {
					t.Errorf("PATH_INFO %q, want %q", e.Path, want)
				}
			})},
		{name: "OPTIONS * is answered by the server", req: "OPTIONS * HTTP/1.1\r\n" + hostileHost + "\r\n", status: []int{200}, fate: hostileAnyFate},

		// --- pipelining: answered in order, each with its own body (the
		// first is the slowest, so out-of-order answers would show).
		{name: "three pipelined requests",
			req: "GET /p1?sleep=0.2 HTTP/1.1\r\n" + hostileHost + "\r\n" +
				"POST /p2 HTTP/1.1\r\n" + hostileHost + "Content-Length: 5\r\n\r\nhello" +
				"GET /p3 HTTP/1.1\r\n" + hostileHost + "\r\n",
			status: []int{200, 200, 200}, fate: hostileMustKeep, calls: 3,
			check: func(t *testing.T, ex hostileExchange) {
				for i, want := range []string{"/p1", "/p2", "/p3"} {
					if e := decodeHostileEcho(t, ex.bodies[i]); e.Path != want {
						t.Errorf("response %d is for %q, want %q", i+1, e.Path, want)
					}
				}
				if e := decodeHostileEcho(t, ex.bodies[1]); e.Body != "hello" {
					t.Errorf("pipelined POST body %q", e.Body)
				}
			}},

		// --- limits (--limit-request-line 4094, --limit-request-fields 100,
		// --limit-request-field-size 8190, --max-body-size 1000 here)
		{name: "request line at the limit", req: hostileRequestLine(4094) + "\r\n" + hostileHost + "\r\n", status: []int{200}, fate: hostileMustKeep, calls: 1},
		{name: "request line over the limit", req: hostileRequestLine(4095) + "\r\n" + hostileHost + "\r\n", status: []int{414}, fate: hostileMustClose},
		{name: "oversized query string", req: "GET /q?" + strings.Repeat("q=1&", 1500) + " HTTP/1.1\r\n" + hostileHost + "\r\n", status: []int{414}, fate: hostileMustClose},
		{name: "100 header fields", req: "GET / HTTP/1.1\r\n" + hostileHost + hostileHeaderLines(99) + "\r\n", status: []int{200}, fate: hostileMustKeep, calls: 1},
		{name: "101 header fields (Host included)", req: "GET / HTTP/1.1\r\n" + hostileHost + hostileHeaderLines(100) + "\r\n", status: []int{431}, fate: hostileMustClose},
		// The same with the client's own X-Request-Id among them (the
		// server adds one when there is none, which changes the count).
		{name: "101 header fields (Host and X-Request-Id included)", req: "GET / HTTP/1.1\r\n" + hostileHost + "X-Request-Id: abc123\r\n" + hostileHeaderLines(99) + "\r\n", status: []int{431}, fate: hostileMustClose},
		{name: "102 header fields", req: "GET / HTTP/1.1\r\n" + hostileHost + hostileHeaderLines(101) + "\r\n", status: []int{431}, fate: hostileMustClose},
		{name: "10000 header fields", req: "GET / HTTP/1.1\r\n" + hostileHost + hostileHeaderLines(10000) + "\r\n", status: []int{431}, fate: hostileMustClose},
		{name: "header field at the size limit", req: "GET / HTTP/1.1\r\n" + hostileHost + "X-Big: " + strings.Repeat("v", 8190-len("X-Big: ")) + "\r\n\r\n", status: []int{200}, fate: hostileMustKeep, calls: 1},
		{name: "header field over the size limit", req: "GET / HTTP/1.1\r\n" + hostileHost + "X-Big: " + strings.Repeat("v", 8191-len("X-Big: ")) + "\r\n\r\n", status: []int{431}, fate: hostileMustClose},
		{name: "Host field over the size limit", req: "GET / HTTP/1.1\r\nHost: " + strings.Repeat("h", 9000) + "\r\n\r\n", status: []int{431}, fate: hostileMustClose},
		{name: "headers over a megabyte", req: "GET / HTTP/1.1\r\n" + hostileHost + strings.Repeat("X-Big: "+strings.Repeat("v", 8000)+"\r\n", 130) + "\r\n", status: []int{431}, fate: hostileMustClose},
		{name: "body at the size limit", req: "POST /max HTTP/1.1\r\n" + hostileHost + "Content-Length: 1000\r\n\r\n" + strings.Repeat("b", 1000), status: []int{200}, fate: hostileMustKeep, calls: 1},
		{name: "Content-Length over the body limit", req: "POST / HTTP/1.1\r\n" + hostileHost + "Content-Length: 1500\r\n\r\n" + big, status: []int{413}, fate: hostileMustClose},
		// The client announces a large body and waits for the verdict
		// before sending it: the 413 must come at once.
		{name: "Content-Length over the limit, body not sent", req: "POST / HTTP/1.1\r\n" + hostileHost + "Content-Length: 1500\r\n\r\n", status: []int{413}, fate: hostileMustClose},
		{name: "Expect 100-continue over the limit", req: "POST / HTTP/1.1\r\n" + hostileHost + "Content-Length: 1500\r\nExpect: 100-continue\r\n\r\n", status: []int{413}, fate: hostileMustClose},
		{name: "chunked body over the limit", req: "POST / HTTP/1.1\r\n" + hostileHost + "Transfer-Encoding: chunked\r\n\r\n" + hostileChunked(big, 100), status: []int{413}, fate: hostileMustClose},
		{name: "chunked body at the limit", req: "POST /max HTTP/1.1\r\n" + hostileHost + "Transfer-Encoding: chunked\r\n\r\n" + hostileChunked(big[:1000], 100), status: []int{200}, fate: hostileMustClose, calls: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := hostileCounter(t, s, "calls")
			smuggledBefore := hostileCounter(t, s, "path:/smuggled")
			ex := hostileRoundTrip(t, addr, c.req, max(len(c.status), 1))
			if c.status != nil && fmt.Sprint(ex.statuses) != fmt.Sprint(c.status) {
				t.Errorf("statuses %v, want %v (read error: %v); bodies %.300q", ex.statuses, c.status, ex.err, ex.bodies)
			}
			switch {
			case c.fate == hostileMustClose && !ex.closed:
				t.Errorf("the connection was kept open; it must be closed")
			case c.fate == hostileMustKeep && ex.closed:
				t.Errorf("the connection was closed; it should be kept alive (read error: %v)", ex.err)
			}
			time.Sleep(20 * time.Millisecond) // a late call would show
			calls := hostileCounter(t, s, "calls") - before
			if c.calls >= 0 && calls != c.calls {
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
	// The server lived through all of that.
	if code, _ := get(t, s.URL+"/alive"); code != 200 {
		t.Errorf("after the hostile corpus: %d", code)
	}
	if st := s.Stats(); st.Restarts != 0 {
		t.Errorf("%d workers died during the hostile corpus", st.Restarts)
	}
	if strings.Contains(s.Log.String(), "panic") {
		t.Errorf("a panic was logged:\n%s", s.Log.String())
	}
}

// TestHostileEarlyClose: a client announces a body and leaves before
// sending all of it. The app is not called, nothing is answered, nothing
// is held.
func TestHostileEarlyClose(t *testing.T) {
	s := start(t, "hostile_count", hornbeam.Options{Workers: 1})
	for _, req := range []string{
		"POST /early HTTP/1.1\r\n" + hostileHost + "Content-Length: 100\r\n\r\n0123456789",
		"POST /early HTTP/1.1\r\n" + hostileHost + "Transfer-Encoding: chunked\r\n\r\n64\r\n0123456789",
		// past the in-memory threshold: the body is being spooled to a file
		"POST /early HTTP/1.1\r\n" + hostileHost + "Content-Length: 3000000\r\n\r\n" + strings.Repeat("z", 2000000),
	} {
		c, err := net.Dial("tcp", hostOf(s))
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, req)
		time.Sleep(100 * time.Millisecond)
		c.Close()
	}
	time.Sleep(300 * time.Millisecond)
	if n := hostileCounter(t, s, "calls"); n != 0 {
		last, _, _ := s.StateGet("last:/early")
		t.Errorf("the app was called %d times for requests whose bodies never arrived; the last call got %v", n, last)
	}
	if code, _ := get(t, s.URL+"/after"); code != 200 {
		t.Errorf("after early closes: %d", code)
	}
}

// TestHostileHalfClose: a client that sends a whole request and then shuts
// down its sending side (shutdown(SHUT_WR), as `nc -N` does) must get the
// app's real response or nothing - never a response the app did not make.
func TestHostileHalfClose(t *testing.T) {
	s := start(t, "hostile_count", hornbeam.Options{Workers: 1})
	for _, path := range []string{"/half", "/half?sleep=0.2"} {
		c, err := net.Dial("tcp", hostOf(s))
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET "+path+" HTTP/1.1\r\n"+hostileHost+"Connection: close\r\n\r\n")
		c.(*net.TCPConn).CloseWrite()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		out, _ := io.ReadAll(c)
		c.Close()
		if len(out) == 0 {
			continue // nothing: acceptable
		}
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(string(out))), nil)
		if err != nil {
			t.Errorf("%s: not a valid response: %v: %q", path, err, out)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !strings.Contains(string(b), `"path": "/half"`) {
			t.Errorf("%s with the client's side half-closed: got %d %q, which the app did not send", path, resp.StatusCode, b)
		}
	}
}

// TestHostileSlowClients: slowloris. 1,000 clients each send one header
// byte a second. They must not stop others
// from being served, and the read-header timeout (2 s here) must close them.
func TestHostileSlowClients(t *testing.T) {
	const slow = 1000
	s := start(t, "hostile_count", hornbeam.Options{Workers: 1, ReadHeaderTimeout: 2 * time.Second})
	req := "GET /slow HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("s", 100)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		lifetime []time.Duration // how long each slow connection lived
		dialErrs int
	)
	for i := 0; i < slow; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", hostOf(s), 5*time.Second)
			if err != nil {
				mu.Lock()
				dialErrs++
				mu.Unlock()
				return
			}
			defer c.Close()
			t0 := time.Now()
			buf := make([]byte, 512)
			for k := 0; k < len(req); k++ {
				if _, err := c.Write([]byte{req[k]}); err != nil {
					break
				}
				c.SetReadDeadline(time.Now().Add(time.Second))
				_, err := c.Read(buf) // nothing is expected: this is the 1 s pause
				var ne net.Error
				if err != nil && errors.As(err, &ne) && ne.Timeout() {
					continue
				}
				break // closed by the server (or, wrongly, answered)
			}
			mu.Lock()
			lifetime = append(lifetime, time.Since(t0))
			mu.Unlock()
		}()
	}
	// While they trickle, normal requests are served promptly.
	time.Sleep(1200 * time.Millisecond)
	for i := 0; i < 5; i++ {
		t0 := time.Now()
		code, _ := get(t, s.URL+"/fast")
		if d := time.Since(t0); code != 200 || d > time.Second {
			t.Errorf("a normal request among %d slow clients: %d after %s", slow, code, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
	wg.Wait()
	if dialErrs > 0 {
		t.Errorf("%d of %d slow clients could not connect", dialErrs, slow)
	}
	var longest time.Duration
	for _, d := range lifetime {
		longest = max(longest, d)
	}
	t.Logf("%d slow clients closed after at most %s (--read-header-timeout 2s)", len(lifetime), longest)
	if longest > 4*time.Second {
		t.Errorf("a slow client lived %s with a 2 s read-header timeout", longest)
	}
	if n := hostileCounter(t, s, "path:/slow"); n != 0 {
		t.Errorf("a slow client's request reached the app %d times", n)
	}
}

// TestHostileWorkerKilledUnderLoad: SIGKILL one of 2 workers while 8
// clients hammer them. Only the requests it held fail (502; with 1 thread
// it holds at most threads+1 = 2: the one running and the one queued
// behind it), it is replaced, and requests succeed afterwards.
func TestHostileWorkerKilledUnderLoad(t *testing.T) {
	s := start(t, "core", hornbeam.Options{Workers: 2})
	before := s.Stats().Workers
	if len(before) != 2 {
		t.Fatalf("%d workers", len(before))
	}
	victim := before[0].PID
	var (
		stop     atomic.Bool
		wg       sync.WaitGroup
		mu       sync.Mutex
		ok       int
		statuses = map[int]int{}
		errs     []string
		okAfter  int // successes once the replacement is serving
	)
	var replaced atomic.Bool
	client := &http.Client{Timeout: 20 * time.Second}
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				resp, err := client.Get(s.URL + "/pid?sleep=0.005")
				if err != nil {
					mu.Lock()
					errs = append(errs, err.Error())
					mu.Unlock()
					continue
				}
				io.ReadAll(resp.Body)
				resp.Body.Close()
				mu.Lock()
				if resp.StatusCode == 200 {
					ok++
					if replaced.Load() {
						okAfter++
					}
				} else {
					statuses[resp.StatusCode]++
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var after []int
	waitFor(t, 15*time.Second, "a replacement worker", func() bool {
		ws := s.Stats().Workers
		after = after[:0]
		for _, w := range ws {
			after = append(after, w.PID)
		}
		return len(ws) == 2 && after[0] != victim && after[1] != victim
	})
	replaced.Store(true)
	time.Sleep(700 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	failed := 0
	for code, n := range statuses {
		if code != 502 {
			t.Errorf("%d requests got %d; only 502 is expected", n, code)
		}
		failed += n
	}
	t.Logf("killed worker %d; workers now %v; %d ok (%d after the replacement), failures by status %v, client errors %d",
		victim, after, ok, okAfter, statuses, len(errs))
	if len(errs) > 0 {
		t.Errorf("%d requests failed at the connection level (want 502s only): %q", len(errs), errs[:min(3, len(errs))])
	}
	if failed > 2 {
		t.Errorf("%d requests failed; a 1-thread worker holds at most threads+1 = 2", failed)
	}
	if okAfter == 0 {
		t.Error("no request succeeded after the replacement")
	}
	if code, _ := get(t, s.URL+"/pid"); code != 200 {
		t.Errorf("after the kill: %d", code)
	}
}

// TestHostileNoisyStdout: a request whose app prints ~50 MB to stdout does
// not stall the server: another route keeps being answered within a second
// while it runs, and the noisy request completes.
func TestHostileNoisyStdout(t *testing.T) {
	s := start(t, "hostile_noisy", hornbeam.Options{Workers: 2, ErrorLog: io.Discard})
	done := make(chan string, 1)
	go func() {
		resp, err := (&http.Client{Timeout: 120 * time.Second}).Get(s.URL + "/noisy")
		if err != nil {
			done <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- strconv.Itoa(resp.StatusCode) + " " + string(b)
	}()
	t0 := time.Now()
	var slowest time.Duration
	during := 0
	for {
		select {
		case got := <-done:
			t.Logf("the noisy request took %s; %d other requests meanwhile, the slowest %s", time.Since(t0), during, slowest)
			if got != "200 noisy done" {
				t.Errorf("the noisy request: %q", got)
			}
			if code, body := get(t, s.URL+"/ok"); code != 200 || body != "ok" {
				t.Errorf("after the noise: %d %q", code, body)
			}
			if st := s.Stats(); st.Restarts != 0 {
				t.Errorf("%d workers died", st.Restarts)
			}
			return
		default:
		}
		if time.Since(t0) > 120*time.Second {
			t.Fatal("the noisy request did not finish within 120 s")
		}
		r0 := time.Now()
		code, body := get(t, s.URL+"/ok")
		d := time.Since(r0)
		slowest = max(slowest, d)
		during++
		if code != 200 || body != "ok" || d > time.Second {
			t.Errorf("a request while the app floods stdout: %d %q after %s", code, body, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestHostileReadUnsentBody: an app reading wsgi.input on a request without
// a body gets b"" at once, for read(), read(10) and readline().
func TestHostileReadUnsentBody(t *testing.T) {
	s := start(t, "hostile_count", hornbeam.Options{Workers: 1, Timeout: 10 * time.Second})
	for _, req := range []string{
		"GET /readnothing HTTP/1.1\r\n" + hostileHost + "Connection: close\r\n\r\n",
		"POST /readnothing HTTP/1.1\r\n" + hostileHost + "Content-Length: 0\r\nConnection: close\r\n\r\n",
		"POST /readnothing HTTP/1.1\r\n" + hostileHost + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n",
		"GET /readnothing HTTP/1.0\r\n\r\n",
	} {
		t0 := time.Now()
		ex := hostileRoundTrip(t, hostOf(s), req, 1)
		d := time.Since(t0)
		if len(ex.statuses) != 1 || ex.statuses[0] != 200 {
			t.Errorf("%q: statuses %v after %s (%v)", req, ex.statuses, d, ex.err)
			continue
		}
		var got struct {
			Read, Read10, Readline, ReadAgain string
			Seconds                           float64
		}
		json.Unmarshal([]byte(ex.bodies[0]), &got)
		if got.Read != "" || got.Read10 != "" || got.Readline != "" || got.ReadAgain != "" {
			t.Errorf("%q: reading an absent body gave %+v", req, got)
		}
		if got.Seconds > 0.5 || d > 3*time.Second {
			t.Errorf("%q: reading an absent body took %.3fs (request %s)", req, got.Seconds, d)
		}
	}
}
