package hornbeam_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hornbeam-go/hornbeam"
)

// pyIdentifier approximates Python's str.isidentifier: valid UTF-8, a
// letter or "_" first, then letters, digits, "_" and combining marks.
func pyIdentifier(s string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	for i, r := range s {
		start := r == '_' || unicode.IsLetter(r) || unicode.Is(unicode.Nl, r)
		cont := start || unicode.IsDigit(r) || unicode.In(r, unicode.Mn, unicode.Mc, unicode.Nd, unicode.Pc)
		if (i == 0 && !start) || !cont {
			return false
		}
	}
	return true
}

// FuzzParseAppSpec: ParseAppSpec never panics; what it accepts is
// MODULE:CALLABLE with exactly one ':' and dotted Python identifiers on
// both sides, the callable defaulting to "application"; and it accepts its
// own output unchanged.
func FuzzParseAppSpec(f *testing.F) {
	for _, s := range []string{"app", "app:application", "myproject.wsgi:application", "a.b.c:d.e", "app:", ":app",
		"a:b:c", "a..b:c", "1app:x", "app:1x", "caf\u00e9:app", "mod-name:app", "app:x y", "app\x00:x", "\xff:app", "app:\u20ac",
		"app:create_app()", "app:f('x:y', n=1)", "app:f(", "app:f(os.getcwd())"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		out, err := hornbeam.ParseAppSpec(spec)
		if err != nil {
			return
		}
		mod, name, _ := strings.Cut(out, ":")
		// The callable may be a factory call with literal arguments,
		// NAME(...), as in gunicorn 21+: its name is what must be dotted.
		if i := strings.IndexByte(name, '('); i >= 0 {
			if !strings.HasSuffix(name, ")") {
				t.Fatalf("ParseAppSpec(%q) = %q: a factory call must end with ')'", spec, out)
			}
			name = name[:i]
		} else if strings.Contains(name, ":") {
			t.Fatalf("ParseAppSpec(%q) = %q: want exactly one ':'", spec, out)
		}
		for _, dotted := range []string{mod, name} {
			for _, part := range strings.Split(dotted, ".") {
				if !pyIdentifier(part) {
					t.Fatalf("ParseAppSpec(%q) = %q: %q is not a Python identifier", spec, out, part)
				}
			}
		}
		if want := spec; !strings.Contains(spec, ":") {
			if want += ":application"; out != want {
				t.Fatalf("ParseAppSpec(%q) = %q, want %q", spec, out, want)
			}
		} else if out != spec {
			t.Fatalf("ParseAppSpec(%q) = %q, want it unchanged", spec, out)
		}
		if again, err := hornbeam.ParseAppSpec(out); err != nil || again != out {
			t.Fatalf("ParseAppSpec(%q) = %q, %v: not a fixed point", out, again, err)
		}
	})
}

// panicWatch is an error log that notes whether a panic was logged.
type panicWatch struct {
	mu       sync.Mutex
	tail     []byte
	panicked atomic.Bool
}

func (p *panicWatch) Write(b []byte) (int, error) {
	if bytes.Contains(b, []byte("panic")) {
		p.panicked.Store(true)
	}
	p.mu.Lock()
	p.tail = append(p.tail, b...)
	if len(p.tail) > 64<<10 {
		p.tail = append([]byte(nil), p.tail[len(p.tail)-32<<10:]...)
	}
	p.mu.Unlock()
	return len(b), nil
}

func (p *panicWatch) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return string(p.tail)
}

// requestMethods parses data as HTTP/1.x requests, as far as it goes, and
// returns their methods in order.
func requestMethods(data []byte) []string {
	var methods []string
	br := bufio.NewReader(bytes.NewReader(data))
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return methods
		}
		methods = append(methods, req.Method)
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return methods
		}
	}
}

// checkHTTPResponses fails unless out is a sequence of valid HTTP/1.x
// responses (the last one possibly cut short: the server may close a
// connection mid-body) answering the requests in data.
func checkHTTPResponses(t *testing.T, data, out []byte) {
	t.Helper()
	if len(out) == 0 {
		return // closed without an answer
	}
	if bytes.HasPrefix(data, []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")) {
		// HTTP/2 with prior knowledge: the answer starts with a SETTINGS frame.
		if len(out) < 9 || out[3] != 0x4 {
			t.Fatalf("h2c prior knowledge answered with %q", out[:min(len(out), 64)])
		}
		return
	}
	methods := requestMethods(data)
	br := bufio.NewReader(bytes.NewReader(out))
	for i := 0; ; {
		if _, err := br.Peek(1); err == io.EOF {
			return
		}
		method := "GET"
		if i < len(methods) {
			method = methods[i]
		}
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("response %d is not valid HTTP: %v\nrequest %q\nanswer %q", i+1, err, data, out)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			if _, more := br.Peek(1); errors.Is(err, io.ErrUnexpectedEOF) && more == io.EOF {
				return // cut mid-body, then closed
			}
			t.Fatalf("response %d: bad body: %v\nrequest %q\nanswer %q", i+1, err, data, out)
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			return // another protocol follows
		}
		if resp.StatusCode >= 200 {
			i++
		}
	}
}

// FuzzHTTPRequest sends arbitrary bytes to a running server (one for the
// whole run, started before fuzzing) on a new connection, closes the
// sending side and reads until the server closes. The server must never
// panic, lose a worker or stop serving, and must answer with valid HTTP
// responses or close without one.
func FuzzHTTPRequest(f *testing.F) {
	if _, err := os.Stat(python); err != nil {
		f.Skip("Debian's /usr/bin/python3 is not installed")
	}
	log := &panicWatch{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	srv, err := hornbeam.Start(ctx, "hostile_count", hornbeam.Options{
		Bind: []string{"127.0.0.1:0"}, Python: python, PythonPath: []string{appsDir(nil)},
		Workers: 2, Timeout: 5 * time.Second, ReadHeaderTimeout: 2 * time.Second, Keepalive: time.Second,
		MaxBodySize: 1 << 20, ErrorLog: log,
	})
	cancel()
	if err != nil {
		f.Fatalf("starting the server: %v\n%s", err, log)
	}
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Stop(ctx)
	})
	addr := srv.Addrs()[0].String()

	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /q?a=1 HTTP/1.0\r\n\r\n",
		"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /after-head HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
		"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n0\r\nT: v\r\n\r\n",
		"POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		"POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
		"GET /stream?delay=0 HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /readnothing HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET http://h/abs HTTP/1.1\r\nHost: x\r\n\r\n",
		"G(T / HTTP/9.9\r\nBad Name: \x00\r\n \r\n\r\n",
		"GET /\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("the server no longer accepts connections: %v", err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		go func() {
			c.Write(data)
			c.(*net.TCPConn).CloseWrite()
		}()
		out, err := io.ReadAll(c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("no answer and no close within 10 s of a half-closed request %q; got %q", data, out)
		}
		checkHTTPResponses(t, data, out)
		if log.panicked.Load() {
			t.Fatalf("the server logged a panic after %q:\n%s", data, log)
		}
		select {
		case err := <-srv.Err():
			t.Fatalf("the server stopped serving after %q: %v", data, err)
		default:
		}
		if st := srv.Stats(); st.Restarts != 0 || len(st.Workers) != 2 {
			t.Fatalf("after %q: %d workers, %d restarts\n%s", data, len(st.Workers), st.Restarts, log)
		}
	})
}
