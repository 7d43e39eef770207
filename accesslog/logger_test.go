package accesslog

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawRequest sends req as is over TCP and returns the response, whose
// body has been read.
func rawRequest(t *testing.T, addr, req string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

func serverAddr(ts *httptest.Server) string { return strings.TrimPrefix(ts.URL, "http://") }

// TestTextFormat checks every atom over a real server and client.
func TestTextFormat(t *testing.T) {
	t.Setenv("HORNBEAM_ACCESSLOG_TEST", "env-value")
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			time.Sleep(30 * time.Millisecond)
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
			return
		case "/nothing":
			return // net/http sends 200 with no body
		case "/hints":
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
			w.Header().Set("Content-Type", "text/x-test")
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, "made")
			return
		}
		w.Header().Set("Content-Type", "text/x-test")
		w.Header().Set("X-Multi", "a")
		w.Header().Add("X-Multi", "b")
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, "hello, world")
	})
	cases := []struct {
		name   string
		format string
		raw    string // raw request; {host} is replaced
		want   string // a regexp for the whole line
	}{
		{
			name:   "default format",
			format: "",
			raw:    "GET /p/a?x=1&y=2 HTTP/1.1\r\nHost: {host}\r\nReferer: http://ref.example/\r\nUser-Agent: test-agent/1.0\r\nAuthorization: Basic " + "YWxpY2U6c2VjcmV0" + "\r\nConnection: close\r\n\r\n",
			want:   `^127\.0\.0\.1 - alice \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "GET /p/a\?x=1&y=2 HTTP/1\.1" 418 12 "http://ref\.example/" "test-agent/1\.0"$`,
		},
		{
			name:   "default format, no referer, agent or user",
			format: "",
			raw:    "GET / HTTP/1.0\r\n\r\n",
			want:   `^127\.0\.0\.1 - - \[[^]]+\] "GET / HTTP/1\.0" 418 12 "-" "-"$`,
		},
		{
			name:   "request parts",
			format: "%(m)s|%(U)s|%(q)s|%(H)s|%(r)s|%(l)s",
			raw:    "POST /a%20b/c?q=%20z HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
			want:   `^POST\|/a b/c\|q=%20z\|HTTP/1\.1\|POST /a%20b/c\?q=%20z HTTP/1\.1\|-$`,
		},
		{
			name:   "sizes",
			format: "%(s)s %(B)s %(b)s",
			raw:    "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
			want:   `^418 12 12$`,
		},
		{
			name:   "empty body: B is 0, b is -",
			format: "%(s)s %(B)s %(b)s",
			raw:    "GET /empty HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
			want:   `^204 0 -$`,
		},
		{
			name:   "handler wrote nothing: 200",
			format: "%(s)s %(B)s %(b)s",
			raw:    "GET /nothing HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
			want:   `^200 0 -$`,
		},
		{
			name:   "103 early hints is not the final status",
			format: "%(s)s %(B)s %({content-type}o)s",
			raw:    "GET /hints HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
			want:   `^201 4 text/x-test$`,
		},
		{
			name:   "headers and environment",
			format: "%({x-custom}i)s|%({X-MISSING}i)s|%({content-type}o)s|%({x-multi}o)s|%({x-none}o)s|%({host}i)s|%({HORNBEAM_ACCESSLOG_TEST}e)s|%({hornbeam_accesslog_test}e)s|%({HORNBEAM_UNSET_VAR_X}e)s",
			raw:    "GET / HTTP/1.1\r\nHost: example.test:81\r\nX-Custom: one\r\nX-Custom: two\r\nConnection: close\r\n\r\n",
			want:   `^one,two\|-\|text/x-test\|a,b\|-\|example\.test:81\|env-value\|env-value\|-$`,
		},
		{
			name:   "times",
			format: "%(T)s %(D)s %(M)s %(L)s",
			raw:    "GET /slow HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
			want:   `^0 (\d+) (\d+) 0\.(\d{6})$`,
		},
		{
			name:   "process id",
			format: "%(p)s",
			raw:    "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
			want:   `^<` + strconv.Itoa(os.Getpid()) + `>$`,
		},
		{
			name:   "percent literal",
			format: "100%% %(s)s",
			raw:    "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
			want:   `^100% 418$`,
		},
		{
			name:   "log injection is escaped",
			format: `"%(U)s" "%(a)s" "%(f)s" %({x-evil}i)s`,
			raw:    "GET /a%0D%0Ab%22c%00 HTTP/1.1\r\nHost: {host}\r\nUser-Agent: ag\"ent\\\t\xff\r\nReferer: \"quoted\"\r\nX-Evil: x\xe2\x80\xa8y\r\nConnection: close\r\n\r\n",
			want:   `^"/a\\x0d\\x0ab\\"c\\x00" "ag\\"ent\\\\\\x09\\xff" "\\"quoted\\"" x\\u2028y$`,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sink := newSink(t)
			l, err := New(sink, c.format, false)
			if err != nil {
				t.Fatal(err)
			}
			ts := httptest.NewServer(l.Handler(app))
			defer ts.Close()
			resp, _ := rawRequest(t, serverAddr(ts), strings.ReplaceAll(c.raw, "{host}", serverAddr(ts)))
			if resp.StatusCode == http.StatusBadRequest {
				t.Fatalf("the server refused the request: %s", resp.Status)
			}
			line := sink.next(t)
			m := regexp.MustCompile(c.want).FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("line %q does not match %s (response %s)", line, c.want, resp.Status)
			}
			if c.name == "times" {
				us, _ := strconv.Atoi(m[1])
				ms, _ := strconv.Atoi(m[2])
				frac, _ := strconv.Atoi(m[3])
				if us < 30000 || us > 5e6 || ms != us/1000 || frac != us {
					t.Fatalf("times %q: D=%d M=%d L=0.%06d, want D >= 30000, M = D/1000, L = D/1e6", line, us, ms, frac)
				}
			}
		})
	}
}

func TestJSONLines(t *testing.T) {
	sink := newSink(t)
	l, err := New(sink, "", true)
	if err != nil {
		t.Fatal(err)
	}
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(5 * time.Millisecond)
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, "12345")
	})
	ts := httptest.NewServer(RequestID(l.Handler(app)))
	defer ts.Close()
	before := time.Now()
	resp, _ := rawRequest(t, serverAddr(ts), "PUT /x%0Ay/z?a=b&c HTTP/1.1\r\nHost: h\r\nReferer: r\"ef\r\nUser-Agent: ua\t1\r\nX-Request-Id: req-42\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	line := sink.next(t)
	if strings.ContainsAny(line, "\n\t") {
		t.Fatalf("raw control characters in the JSON line %q", line)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatalf("line %q is not JSON: %v", line, err)
	}
	keys := []string{"time", "remote", "method", "path", "query", "proto", "status", "bytes", "duration_ms", "referer", "user_agent", "request_id"}
	if len(got) != len(keys) {
		t.Fatalf("keys of %q: got %d, want %v", line, len(got), keys)
	}
	for i, k := range keys {
		if _, ok := got[k]; !ok {
			t.Fatalf("key %q missing from %q", k, line)
		}
		// fixed key order
		if i > 0 && strings.Index(line, `"`+keys[i-1]+`":`) > strings.Index(line, `"`+k+`":`) {
			t.Fatalf("key %q before %q in %q", k, keys[i-1], line)
		}
	}
	want := map[string]any{
		"remote": "127.0.0.1", "method": "PUT", "path": "/x\ny/z", "query": "a=b&c", "proto": "HTTP/1.1",
		"status": 202.0, "bytes": 5.0, "referer": "r\"ef", "user_agent": "ua\t1", "request_id": "req-42",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#v, want %#v (line %s)", k, got[k], v, line)
		}
	}
	ts0, err := time.Parse(time.RFC3339Nano, got["time"].(string))
	if err != nil || ts0.Before(before.Add(-time.Second)) || ts0.After(time.Now()) {
		t.Errorf("time %v: %v", got["time"], err)
	}
	if d := got["duration_ms"].(float64); d < 5 || d > 5000 {
		t.Errorf("duration_ms = %v, want >= 5", d)
	}
	if resp.Header.Get("X-Request-Id") != "req-42" {
		t.Errorf("response X-Request-Id = %q", resp.Header.Get("X-Request-Id"))
	}
}

// TestConcurrentLines checks that lines from concurrent requests are never
// interleaved: each Write of the sink must be one whole line.
func TestConcurrentLines(t *testing.T) {
	sink := newSink(t)
	l, err := New(sink, `%(U)s %(s)s %(B)s "%(a)s"`, false)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(l.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("x", len(r.URL.Path)))
	})))
	defer ts.Close()
	const n = 64
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", fmt.Sprintf("%s/req/%d", ts.URL, i), nil)
			req.Header.Set("User-Agent", strings.Repeat("u", 2000))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	re := regexp.MustCompile(`^(/req/\d+) 200 (\d+) "` + strings.Repeat("u", 2000) + `"$`)
	for range n {
		line := sink.next(t)
		m := re.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("malformed line %.100q", line)
		}
		if m[2] != strconv.Itoa(len(m[1])) {
			t.Fatalf("line %.60q: bytes %s, want %d", line, m[2], len(m[1]))
		}
		seen[m[1]] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct requests logged, want %d", len(seen), n)
	}
}

// readFromRecorder is a ResponseWriter with its own ReadFrom, standing for
// net/http's (which uses sendfile).
type readFromRecorder struct {
	*httptest.ResponseRecorder
	readFromCalls int
	src           io.Reader
}

func (r *readFromRecorder) ReadFrom(src io.Reader) (int64, error) {
	r.readFromCalls++
	r.src = src
	return io.Copy(r.ResponseRecorder, src)
}

// TestReadFromForwarded: the wrapper hands the very reader to the wrapped
// writer's ReadFrom, so net/http can use sendfile: an *os.File (which an
// io.Copy inside the wrapper would hide behind os.File.WriteTo's wrapper),
// or an io.LimitedReader over one, as http.ServeContent and the WSGI
// handler pass through io.Copy.
func TestReadFromForwarded(t *testing.T) {
	const content = "file contents, sent by sendfile"
	cases := []struct {
		name string
		src  func(f *os.File) io.Reader
		ok   func(f *os.File, got io.Reader) bool
	}{
		{"*os.File", func(f *os.File) io.Reader { return f },
			func(f *os.File, got io.Reader) bool { return got == f }},
		{"*io.LimitedReader", func(f *os.File) io.Reader { return io.LimitReader(f, 100) },
			func(f *os.File, got io.Reader) bool { lr, ok := got.(*io.LimitedReader); return ok && lr.R == f }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := os.CreateTemp(t.TempDir(), "body")
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			io.WriteString(f, content)
			f.Seek(0, io.SeekStart)
			l, _ := New(io.Discard, "", false)
			h := l.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if _, ok := w.(http.Flusher); !ok {
					t.Error("the wrapped writer lost http.Flusher")
				}
				rf, ok := w.(io.ReaderFrom)
				if !ok {
					t.Fatal("the wrapped writer lost io.ReaderFrom")
				}
				n, err := rf.ReadFrom(c.src(f))
				if n != int64(len(content)) || err != nil {
					t.Errorf("ReadFrom = %d, %v", n, err)
				}
			}))
			rec := &readFromRecorder{ResponseRecorder: httptest.NewRecorder()}
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			if rec.readFromCalls != 1 || !c.ok(f, rec.src) {
				t.Fatalf("inner ReadFrom called %d times with %T, want once with the file's reader", rec.readFromCalls, rec.src)
			}
			if rec.Body.String() != content {
				t.Fatalf("body %q", rec.Body.String())
			}
		})
	}
}

// TestWriterFeatures checks, over a real server, that the wrapped writer
// still flushes, counts ReadFrom bytes, reaches http.ResponseController's
// deadlines through Unwrap, and that the line is written even when the
// handler aborts.
func TestWriterFeatures(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f.bin")
	os.WriteFile(file, []byte(strings.Repeat("z", 100000)), 0o644)
	release := make(chan struct{})
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/flush":
			io.WriteString(w, "first")
			w.(http.Flusher).Flush()
			<-release // the client must have "first" before the handler ends
			io.WriteString(w, "second")
		case "/file":
			f, _ := os.Open(file)
			defer f.Close()
			io.Copy(w, f) // -> ReadFrom
		case "/deadline":
			rc := http.NewResponseController(w)
			if err := rc.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			if err := rc.EnableFullDuplex(); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			io.WriteString(w, "ok")
		case "/abort":
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
	})
	sink := newSink(t)
	l, _ := New(sink, "%(U)s %(s)s %(B)s", false)
	ts := httptest.NewServer(l.Handler(app))
	defer ts.Close()

	t.Run("flush", func(t *testing.T) {
		resp, err := http.Get(ts.URL + "/flush")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		buf := make([]byte, 5)
		if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first" {
			close(release)
			t.Fatalf("first chunk %q, %v", buf, err)
		}
		close(release)
		rest, _ := io.ReadAll(resp.Body)
		if string(rest) != "second" {
			t.Fatalf("rest %q", rest)
		}
		if line := sink.next(t); line != "/flush 200 11" {
			t.Fatalf("line %q", line)
		}
	})
	t.Run("file", func(t *testing.T) {
		resp, err := http.Get(ts.URL + "/file")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if len(body) != 100000 {
			t.Fatalf("body %d bytes", len(body))
		}
		if line := sink.next(t); line != "/file 200 100000" {
			t.Fatalf("line %q", line)
		}
	})
	t.Run("deadline through Unwrap", func(t *testing.T) {
		resp, err := http.Get(ts.URL + "/deadline")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "ok" {
			t.Fatalf("ResponseController through the wrapper: %d %q", resp.StatusCode, body)
		}
		if line := sink.next(t); line != "/deadline 200 2" {
			t.Fatalf("line %q", line)
		}
	})
	t.Run("abort", func(t *testing.T) {
		resp, err := http.Get(ts.URL + "/abort")
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if err == nil {
			t.Fatal("an aborted response looked whole")
		}
		if line := sink.next(t); line != "/abort 200 7" {
			t.Fatalf("line %q", line)
		}
	})
}

// TestEarlyHintsReachClient: a 103 goes through the wrapper to the client,
// and the logged status is the final one.
func TestEarlyHintsReachClient(t *testing.T) {
	sink := newSink(t)
	l, _ := New(sink, "%(s)s", false)
	ts := httptest.NewServer(l.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusNotFound)
	})))
	defer ts.Close()
	var got1xx []int
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		got1xx = append(got1xx, code)
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), "GET", ts.URL, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(got1xx) != 1 || got1xx[0] != 103 || resp.StatusCode != 404 {
		t.Fatalf("1xx %v, final %d", got1xx, resp.StatusCode)
	}
	if line := sink.next(t); line != "404" {
		t.Fatalf("logged status %q, want 404", line)
	}
}

var errWrite = errors.New("write failed")

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errWrite }

// TestWriteErrorDoesNotBreakRequests: a failing log writer never affects
// the response.
func TestWriteErrorDoesNotBreakRequests(t *testing.T) {
	l, _ := New(failingWriter{}, "", false)
	ts := httptest.NewServer(l.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "fine") })))
	defer ts.Close()
	resp, err := http.Get(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "fine" {
		t.Fatalf("body %q", body)
	}
}
