package wsgiembed

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hornbeam-go/hornbeam/internal/cpython"
)

// The tests embed Debian's interpreter, whose shared library comes with the
// libpython3.11 package, and serve testdata/embedtest.py: one app per
// process (CPython is initialised once), routing on X-Test-App to the
// repository's test apps (testdata/apps), Flask (examples/flask_app.py) and
// the hello world.
const debianPython = "/usr/bin/python3"

var (
	appOnce sync.Once
	theApp  *App
	appErr  error
)

func testApp(t testing.TB) *App {
	t.Helper()
	appOnce.Do(func() {
		theApp, appErr = Load(Config{
			Python:     debianPython,
			App:        "embedtest:application",
			PythonPath: []string{"testdata", "../testdata/apps", "../examples"},
			Argv:       []string{"hornbeam-test"},
		})
	})
	if appErr != nil {
		if cpython.IsNoSharedLib(appErr) {
			t.Skipf("Debian's libpython is not installed (apt-get install libpython3.11): %v", appErr)
		}
		if _, err := os.Stat(debianPython); err != nil {
			t.Skipf("Debian's python3 is not installed: %v", err)
		}
		t.Fatal(appErr)
	}
	return theApp
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type testServer struct {
	*httptest.Server
	h   *Handler
	log *syncBuffer
}

func serve(t testing.TB) *testServer {
	t.Helper()
	logs := &syncBuffer{}
	h := &Handler{App: testApp(t), ErrorLog: log.New(logs, "", 0), MaxBodySize: 1 << 30}
	s := httptest.NewServer(h)
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	t.Cleanup(s.Close)
	return &testServer{Server: s, h: h, log: logs}
}

func (s *testServer) addr() string { return strings.TrimPrefix(s.URL, "http://") }

func do(t testing.TB, method, url, app string, body io.Reader) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if app != "" {
		req.Header.Set("X-Test-App", app)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	return resp, string(b)
}

func get(t testing.TB, url, app string) (int, string) {
	t.Helper()
	resp, body := do(t, "GET", url, app, nil)
	return resp.StatusCode, body
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestHello(t *testing.T) {
	s := serve(t)
	resp, body := do(t, "GET", s.URL+"/", "hello", nil)
	if resp.StatusCode != 200 || body != "Hello, World!" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	// A list response gets a Content-Length, as in the process mode.
	if resp.ContentLength != 13 || resp.Header.Get("Content-Type") != "text/plain" {
		t.Errorf("length %d, headers %v", resp.ContentLength, resp.Header)
	}
}

func echoEnviron(t *testing.T, body string) map[string]any {
	t.Helper()
	var env map[string]any
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatalf("decoding the environ: %v: %q", err, body)
	}
	return env
}

// TestEnviron checks the environ against README "What the app sees", the
// table the process mode's TestEnviron (wsgi_test.go) checks too.
func TestEnviron(t *testing.T) {
	s := serve(t)
	req, _ := http.NewRequest("POST", s.URL+"/caf%C3%A9/a%20b?q=1&r=%20", strings.NewReader("hello"))
	req.Header.Set("X-Test-App", "echo")
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Add("X-Rep", "a")
	req.Header.Add("X-Rep", "b")
	req.Header.Set("X-Custom", "v")
	req.Header.Add("Cookie", "a=1")
	req.Header.Add("Cookie", "b=2")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	env := echoEnviron(t, string(b))
	host, port, _ := net.SplitHostPort(s.addr())
	want := map[string]any{
		"REQUEST_METHOD":    "POST",
		"SCRIPT_NAME":       "",
		"PATH_INFO":         "/caf\u00c3\u00a9/a b", // UTF-8 bytes as latin-1, per PEP 3333
		"QUERY_STRING":      "q=1&r=%20",
		"RAW_URI":           "/caf%C3%A9/a%20b?q=1&r=%20",
		"REQUEST_URI":       "/caf%C3%A9/a%20b?q=1&r=%20",
		"CONTENT_TYPE":      "text/plain",
		"CONTENT_LENGTH":    "5",
		"SERVER_NAME":       host,
		"SERVER_PORT":       port,
		"SERVER_PROTOCOL":   "HTTP/1.1",
		"REMOTE_ADDR":       "127.0.0.1",
		"HTTP_HOST":         s.addr(),
		"HTTP_X_REP":        "a,b",
		"HTTP_X_CUSTOM":     "v",
		"HTTP_COOKIE":       "a=1; b=2",
		"wsgi.url_scheme":   "http",
		"wsgi.multithread":  false,
		"wsgi.multiprocess": true,
		"wsgi.run_once":     false,
		"wsgi.input":        "BytesIO",
		"wsgi.errors":       "TextIOWrapper",
		"wsgi.file_wrapper": "callable",
		"wsgi.early_hints":  "callable",
		"wsgi.version":      []any{1.0, 0.0},
	}
	for k, v := range want {
		if fmt.Sprint(env[k]) != fmt.Sprint(v) {
			t.Errorf("%s = %#v, want %#v", k, env[k], v)
		}
	}
	if p, err := strconv.Atoi(fmt.Sprint(env["REMOTE_PORT"])); err != nil || p == 0 {
		t.Errorf("REMOTE_PORT = %v", env["REMOTE_PORT"])
	}
	// Nothing else: the headers the client sent, and no hornbeam.* key.
	extra := map[string]bool{"REMOTE_PORT": true, "HTTP_X_TEST_APP": true, "HTTP_USER_AGENT": true, "HTTP_ACCEPT_ENCODING": true}
	for k := range env {
		if _, ok := want[k]; !ok && !extra[k] {
			t.Errorf("unexpected key %s = %v", k, env[k])
		}
	}
}

// TestEnvironTypes: the values' types are the process mode's (str for the
// CGI keys, a function for wsgi.early_hints, a class for file_wrapper).
func TestEnvironTypes(t *testing.T) {
	s := serve(t)
	_, body := get(t, s.URL+"/types", "extra")
	var types map[string]string
	json.Unmarshal([]byte(body), &types)
	for k, v := range types {
		want := "str"
		switch k {
		case "wsgi.version":
			want = "tuple"
		case "wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once":
			want = "bool"
		case "wsgi.input":
			want = "BytesIO"
		case "wsgi.errors":
			want = "TextIOWrapper"
		case "wsgi.file_wrapper":
			want = "type"
		case "wsgi.early_hints":
			want = "function"
		}
		if v != want {
			t.Errorf("%s is a %s, want %s", k, v, want)
		}
	}
}

func TestEnvironRawBytes(t *testing.T) {
	s := serve(t)
	// A header value with a raw 0xE9 byte, a header with an underscore
	// (dropped: it could spoof X-Forwarded-For), HTTP/1.0, no body.
	out := rawRequest(t, s.addr(), "GET /x HTTP/1.0\r\nHost: h\r\nX-Test-App: echo\r\nX-Name: caf\xe9\r\nX-Forwarded_For: 6.6.6.6\r\n\r\n")
	if !strings.HasPrefix(out, "HTTP/1.0 200") {
		t.Fatalf("HTTP/1.0 request: %q", out)
	}
	env := echoEnviron(t, out[strings.Index(out, "\r\n\r\n")+4:])
	if env["HTTP_X_NAME"] != "caf\u00e9" {
		t.Errorf("HTTP_X_NAME = %q, want latin-1 decoded caf\u00e9", env["HTTP_X_NAME"])
	}
	if env["SERVER_PROTOCOL"] != "HTTP/1.0" || env["SERVER_NAME"] != "h" {
		t.Errorf("SERVER_PROTOCOL = %v, SERVER_NAME = %v", env["SERVER_PROTOCOL"], env["SERVER_NAME"])
	}
	if _, ok := env["HTTP_X_FORWARDED_FOR"]; ok {
		t.Error("a header name with an underscore must not become HTTP_X_FORWARDED_FOR")
	}
	if _, ok := env["CONTENT_LENGTH"]; ok {
		t.Error("no body, no CONTENT_LENGTH")
	}
}

func TestEnvironHTTP2(t *testing.T) {
	h := &Handler{App: testApp(t)}
	s := httptest.NewUnstartedServer(h)
	s.EnableHTTP2 = true
	s.StartTLS()
	defer s.Close()
	req, _ := http.NewRequest("GET", s.URL+"/h2", nil)
	req.Header.Set("X-Test-App", "echo")
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	env := echoEnviron(t, string(b))
	if resp.ProtoMajor != 2 || env["SERVER_PROTOCOL"] != "HTTP/2" || env["wsgi.url_scheme"] != "https" {
		t.Errorf("proto %s, SERVER_PROTOCOL %v, scheme %v", resp.Proto, env["SERVER_PROTOCOL"], env["wsgi.url_scheme"])
	}
}

func rawRequest(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	return string(b)
}

func TestInput(t *testing.T) {
	s := serve(t)
	body := "line one\nline two\nend"
	cases := []struct {
		mode string
		want []string
	}{
		{"read", []string{body}},
		{"readn", []string{"lin", "e o", "ne\n", "lin", "e t", "wo\n", "end"}},
		{"readline", []string{"line one\n", "line two\n", "end"}},
		{"readlines", []string{"line one\n", "line two\n", "end"}},
		{"iter", []string{"line one\n", "line two\n", "end"}},
	}
	for _, chunked := range []bool{false, true} {
		for _, c := range cases {
			var r io.Reader = strings.NewReader(body)
			if chunked {
				r = io.MultiReader(strings.NewReader(body[:5]), strings.NewReader(body[5:])) // unknown length
			}
			req, _ := http.NewRequest("POST", s.URL+"/input?mode="+c.mode, r)
			if chunked {
				req.ContentLength = -1
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				Parts  []string
				Length string
			}
			json.NewDecoder(resp.Body).Decode(&got)
			resp.Body.Close()
			if strings.Join(got.Parts, "|") != strings.Join(c.want, "|") {
				t.Errorf("%s chunked=%v: parts %q, want %q", c.mode, chunked, got.Parts, c.want)
			}
			if got.Length != strconv.Itoa(len(body)) {
				t.Errorf("%s chunked=%v: CONTENT_LENGTH %q, want %d", c.mode, chunked, got.Length, len(body))
			}
		}
	}
}

type patternReader struct{ n, off int64 }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	if int64(len(b)) > p.n-p.off {
		b = b[:p.n-p.off]
	}
	for i := range b {
		b[i] = byte((p.off + int64(i)) % 251)
	}
	p.off += int64(len(b))
	return len(b), nil
}

// TestUploads: a body up to 64 KiB is an io.BytesIO, a larger one a real
// file (spooled by Go, its descriptor handed to Python and closed after).
func TestUploads(t *testing.T) {
	s := serve(t)
	for _, size := range []int64{100, 64 << 10, 64<<10 + 1, 20 << 20} {
		h := sha256.New()
		io.Copy(h, &patternReader{n: size})
		req, _ := http.NewRequest("POST", s.URL+"/upload", &patternReader{n: size})
		req.ContentLength = size
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			SHA256 string
			N      int64
			Input  string
			Fileno bool
		}
		json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if got.SHA256 != hex.EncodeToString(h.Sum(nil)) || got.N != size {
			t.Errorf("%d bytes: the app read %d, sha256 %s", size, got.N, got.SHA256)
		}
		wantInput, wantFD := "BytesIO", false
		if size > DefaultSpoolThreshold {
			wantInput, wantFD = "BufferedReader", true
		}
		if got.Input != wantInput || got.Fileno != wantFD {
			t.Errorf("%d bytes: wsgi.input is %s (fileno %v), want %s", size, got.Input, got.Fileno, wantInput)
		}
	}
	// A generator reads a spooled body while it streams: the file stays
	// open until the stream ends.
	resp, body := do(t, "POST", s.URL+"/gen-input", "extra", &patternReader{n: 1 << 20})
	if resp.StatusCode != 200 || body != "first 1048576" {
		t.Errorf("%d %q", resp.StatusCode, body)
	}
}

// pyInfo asks the app about its interpreter.
func pyInfo(t *testing.T, s *testServer) map[string]any {
	t.Helper()
	_, body := get(t, s.URL+"/python-info", "extra")
	var v map[string]any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("%v: %q", err, body)
	}
	return v
}

func TestPythonInfo(t *testing.T) {
	s := serve(t)
	v := pyInfo(t, s)
	if v["executable"] != debianPython || fmt.Sprint(v["argv"]) != "[hornbeam-test]" || v["main"] != false {
		t.Errorf("%v", v)
	}
}

// TestSpawn: multiprocessing's spawn runs sys.executable, which must be the
// interpreter (were it this binary, the server would start again).
func TestSpawn(t *testing.T) {
	s := serve(t)
	code, body := get(t, s.URL+"/spawn", "extra")
	if code != 200 || body != "child pid differs: True" {
		t.Errorf("%d %q\n%s", code, body, s.log.String())
	}
}

func TestStreaming(t *testing.T) {
	s := serve(t)
	t0 := time.Now()
	resp, err := http.Get(s.URL + "/stream?key=s1&delay=0.3")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ContentLength != -1 || resp.TransferEncoding == nil {
		t.Errorf("a generator response should be chunked, got length %d, TE %v", resp.ContentLength, resp.TransferEncoding)
	}
	br := bufio.NewReader(resp.Body)
	var arrivals []time.Duration
	var text string
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			arrivals = append(arrivals, time.Since(t0))
			text += line
		}
		if err != nil {
			break
		}
	}
	if text != "one\ntwo\nthree\n" {
		t.Fatalf("got %q", text)
	}
	// Each chunk comes when the generator yields it.
	if arrivals[0] > 200*time.Millisecond || arrivals[1]-arrivals[0] < 200*time.Millisecond {
		t.Errorf("chunks arrived at %v", arrivals)
	}
	waitFor(t, 3*time.Second, "close() of the iterable", func() bool {
		return fmt.Sprint(pyInfo(t, s)["closed"].(map[string]any)["closed:s1"]) == "1"
	})
}

func TestCloseCalledOnList(t *testing.T) {
	s := serve(t)
	code, body := get(t, s.URL+"/close-list?key=l1", "")
	if code != 200 || body != "listed" {
		t.Fatalf("%d %q", code, body)
	}
	if got := fmt.Sprint(pyInfo(t, s)["closed"].(map[string]any)["closed:l1"]); got != "1" {
		t.Errorf("close() of a list subclass: %s calls", got)
	}
}

func TestWriteCallable(t *testing.T) {
	s := serve(t)
	if _, body := get(t, s.URL+"/write", ""); body != "via write(); then the iterable" {
		t.Errorf("body %q", body)
	}
	// write() from a thread of the app's own is refused with an error
	// (the request's thread is the one that may write).
	_, body := get(t, s.URL+"/write-thread", "extra")
	if !strings.Contains(body, "RuntimeError") {
		t.Errorf("write() from another thread: %s", body)
	}
}

func TestAppErrors(t *testing.T) {
	s := serve(t)
	cases := []struct {
		path, app, log string
	}{
		{"/boom", "", "RuntimeError: kaboom before the response (500)"},
		{"/bad-header", "", "invalid response header value"},
		{"/bad-header-name", "", "invalid response header name"},
		{"/str-subclass-header", "", "invalid response header value for Content-Type"},
		{"/non-latin1-header", "", "not latin-1"},
		{"/bad-status", "", "invalid status"},
		{"/no-start", "", "before calling start_response"},
		{"/not-iterable", "", "not iterable"},
		{"/str-body", "", "must be bytes, got str"},
		{"/status-1xx", "extra", `invalid status "102 Processing"`},
		{"/ctl-header", "extra", "invalid header"},
		{"/exit", "extra", "SystemExit: 3"},
		{"/interrupt", "extra", "KeyboardInterrupt"},
		{"/signal", "extra", "signal only works in main thread"},
	}
	get(t, s.URL+"/pid", "") // a valid ("Content-Type", "text/plain"), which the checks remember
	for _, c := range cases {
		resp, body := do(t, "GET", s.URL+c.path, c.app, nil)
		if resp.StatusCode != 500 {
			t.Errorf("%s: status %d, want 500", c.path, resp.StatusCode)
		}
		if strings.Contains(body, "should not be sent") || resp.Header.Get("X-Injected") != "" || resp.Header.Get("X-Evil") != "" || resp.Header.Get("X-Ctl") != "" {
			t.Errorf("%s: the bad response leaked: %v %q", c.path, resp.Header, body)
		}
		if !strings.Contains(s.log.String(), c.log) {
			t.Errorf("%s: the log lacks %q", c.path, c.log)
		}
	}
	if !strings.Contains(s.log.String(), "Traceback (most recent call last)") || !strings.Contains(s.log.String(), "Error handling GET /boom") {
		t.Errorf("no traceback in the log:\n%s", s.log.String())
	}
	// The process goes on serving after all that, sys.exit() included.
	if code, body := get(t, s.URL+"/", "hello"); code != 200 || body != "Hello, World!" {
		t.Errorf("after app errors: %d %q", code, body)
	}
}

func TestExcInfo(t *testing.T) {
	s := serve(t)
	resp, body := do(t, "GET", s.URL+"/exc_info", "", nil)
	if resp.StatusCode != 503 || body != "recovered with exc_info" {
		t.Errorf("start_response with exc_info before sending: %d %q", resp.StatusCode, body)
	}
	// After the headers are sent, start_response(exc_info) re-raises: the
	// connection is cut.
	r, err := http.Get(s.URL + "/exc_info_late")
	if err == nil {
		_, err = io.ReadAll(r.Body)
		r.Body.Close()
	}
	if err == nil {
		t.Error("a failure after the response started must cut the connection")
	}
	waitFor(t, 2*time.Second, "log", func() bool { return strings.Contains(s.log.String(), "too late") })
}

func TestErrorAfterStartCutsConnection(t *testing.T) {
	s := serve(t)
	resp, err := http.Get(s.URL + "/boom-late")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Errorf("read %q with no error: a truncated body must not look whole", b)
	}
	if string(b) != "first chunk\n" {
		t.Errorf("got %q before the cut", b)
	}
	if !strings.Contains(s.log.String(), "kaboom mid-stream after the response started; closing the connection") {
		t.Errorf("log:\n%s", s.log.String())
	}
}

func TestResponseHeaders(t *testing.T) {
	s := serve(t)
	// Hop-by-hop headers are the server's; Connection: close is honoured.
	resp, body := do(t, "GET", s.URL+"/hop", "extra", nil)
	if body != "hop" || resp.Header.Get("X-Ok") != "1" || !resp.Close || resp.TransferEncoding != nil {
		t.Errorf("hop headers: %v %q close=%v", resp.Header, body, resp.Close)
	}
	// A latin-1 header value goes out as its byte.
	out := rawRequest(t, s.addr(), "GET /latin1 HTTP/1.1\r\nHost: h\r\nX-Test-App: extra\r\nConnection: close\r\n\r\n")
	if !strings.Contains(out, "X-Name: caf\xe9\r\n") {
		t.Errorf("latin-1 header: %q", out)
	}
	// An empty generator: the head alone.
	resp, body = do(t, "GET", s.URL+"/empty-gen", "extra", nil)
	if resp.StatusCode != 204 || body != "" {
		t.Errorf("empty generator: %d %q", resp.StatusCode, body)
	}
}

// TestBigAndHead: a large list response leaves from Python's buffer, with
// its length; HEAD gets the headers alone.
func TestBigAndHead(t *testing.T) {
	s := serve(t)
	resp, body := do(t, "GET", s.URL+"/big?10000001", "extra", nil)
	if resp.ContentLength != 10000001 || len(body) != 10000001 || body[0] != 'x' || body[len(body)-1] != 'y' {
		t.Errorf("length %d, %d bytes", resp.ContentLength, len(body))
	}
	resp, body = do(t, "HEAD", s.URL+"/", "hello", nil)
	if resp.StatusCode != 200 || resp.ContentLength != 13 || body != "" {
		t.Errorf("HEAD: %d, length %d, %q", resp.StatusCode, resp.ContentLength, body)
	}
}

// TestClientGoneMidStream: close() is called when the client leaves.
func TestClientGoneMidStream(t *testing.T) {
	s := serve(t)
	c, err := net.Dial("tcp", s.addr())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET /stream?key=gone&delay=0.2 HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	if _, err := http.ReadResponse(br, nil); err != nil {
		t.Fatal(err)
	}
	c.Close()
	waitFor(t, 3*time.Second, "close() after the client left", func() bool {
		return fmt.Sprint(pyInfo(t, s)["closed"].(map[string]any)["closed:gone"]) == "1"
	})
}

func TestFileWrapper(t *testing.T) {
	s := serve(t)
	path := filepath.Join(t.TempDir(), "data.bin")
	data := bytes.Repeat([]byte("0123456789abcdef"), 100000)
	os.WriteFile(path, data, 0o644)
	resp, body := do(t, "GET", s.URL+"/file?path="+path, "", nil)
	if body != string(data) || resp.ContentLength != int64(len(data)) {
		t.Errorf("file: %d bytes, length %d", len(body), resp.ContentLength)
	}
	resp, body = do(t, "GET", s.URL+"/file?offset=10&path="+path, "", nil)
	if body != string(data[10:]) || resp.ContentLength != int64(len(data)-10) {
		t.Errorf("file at an offset: %d bytes, length %d", len(body), resp.ContentLength)
	}
	// A pipe has no size: iterated in blocks.
	if code, body := get(t, s.URL+"/file?path=/dev/null", ""); code != 200 || body != "" {
		t.Errorf("/dev/null: %d %q", code, body)
	}
}

func TestEarlyHints(t *testing.T) {
	s := serve(t)
	var hints []textproto.MIMEHeader
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		if code == 103 {
			hints = append(hints, h)
		}
		return nil
	}}
	req, _ := http.NewRequest("GET", s.URL+"/hints", nil)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if len(hints) != 1 || hints[0].Get("Link") != "</style.css>; rel=preload; as=style" || string(b) != "after hints" {
		t.Errorf("hints %v, body %q", hints, b)
	}
	if resp.Header.Get("Link") != "" {
		t.Error("the hints' headers leaked into the response")
	}
	// Never to an HTTP/1.0 client.
	out := rawRequest(t, s.addr(), "GET /hints HTTP/1.0\r\nHost: h\r\n\r\n")
	if strings.Contains(out, "103") || !strings.HasPrefix(out, "HTTP/1.0 200") {
		t.Errorf("HTTP/1.0: %q", out)
	}
}

func TestFlask(t *testing.T) {
	s := serve(t)
	resp, body := do(t, "GET", s.URL+"/", "flask", nil)
	if resp.StatusCode != 200 || body != "Hello from Flask!" || resp.ContentLength != int64(len(body)) {
		t.Errorf("%d %q %d", resp.StatusCode, body, resp.ContentLength)
	}
	if _, body := get(t, s.URL+"/hello/%3Cb%3E", "flask"); !strings.Contains(body, "&lt;b&gt;") {
		t.Errorf("escaping: %q", body)
	}
	req, _ := http.NewRequest("POST", s.URL+"/api/items", strings.NewReader(`{"name": "drill", "price": 99}`))
	req.Header.Set("X-Test-App", "flask")
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 201 || !strings.Contains(string(b), `"drill"`) {
			t.Errorf("POST: %d %q", resp.StatusCode, b)
		}
	}
	if _, body := get(t, s.URL+"/page/x", "flask"); !strings.Contains(body, "Hello, x!") {
		t.Errorf("template: %q", body)
	}
	if code, _ := get(t, s.URL+"/nope", "flask"); code != 404 {
		t.Errorf("404: %d", code)
	}
}

// TestConcurrency sends 64 clients x 200 requests at once: each answer
// must be its own request's (GIL, thread states and the gate under load).
func TestConcurrency(t *testing.T) {
	s := serve(t)
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for c := 0; c < 64; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				q := fmt.Sprintf("c%di%d", c, i)
				req, _ := http.NewRequest("GET", s.URL+"/id?"+q, nil)
				req.Header.Set("X-Test-App", "extra")
				resp, err := client.Do(req)
				if err != nil {
					errs <- err
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				sum := 0
				for _, r := range q {
					sum += int(r)
				}
				if want := fmt.Sprintf("%s:%d", q, sum); err != nil || string(b) != want {
					errs <- fmt.Errorf("got %q (%v), want %q", b, err, want)
					return
				}
			}
		}(c)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestSlowClientDoesNotHoldPython: a client that stops reading a large
// streamed response holds its goroutine, not the GIL nor the gate.
func TestSlowClientDoesNotHoldPython(t *testing.T) {
	s := serve(t)
	c, err := net.Dial("tcp", s.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /bigstream?mb=64 HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(300 * time.Millisecond)
	for i := 0; i < 3; i++ {
		t0 := time.Now()
		code, _ := get(t, s.URL+"/", "hello")
		if code != 200 || time.Since(t0) > 2*time.Second {
			t.Fatalf("request %d while a client does not read: %d after %s", i, code, time.Since(t0))
		}
	}
}

func rssKB(t testing.TB) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc")
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}

// TestNoLeak serves 100k requests (hello, a generator, an error) and checks
// that Python's allocated blocks and gc objects, and the process's RSS,
// stay flat.
func TestNoLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	s := serve(t)
	s.h.ErrorLog = nil // the /boom tracebacks
	counts := func() (int64, int64) {
		_, body := get(t, s.URL+"/counts", "extra")
		var v struct{ Blocks, Objects int64 }
		json.Unmarshal([]byte(body), &v)
		return v.Blocks, v.Objects
	}
	round := func(n int) {
		var wg sync.WaitGroup
		for c := 0; c < 4; c++ {
			wg.Add(1)
			go func(c int) {
				defer wg.Done()
				for i := 0; i < n/4; i++ {
					path, app := "/", "hello"
					switch i % 10 {
					case 1:
						path, app = "/stream?key=leak&delay=0", ""
					case 2:
						path, app = "/boom", ""
					case 3:
						path, app = "/id?x", "extra"
					}
					get(t, s.URL+path, app)
				}
			}(c)
		}
		wg.Wait()
	}
	round(10000)
	b0, o0 := counts()
	r0 := rssKB(t)
	round(100000)
	b1, o1 := counts()
	r1 := rssKB(t)
	t.Logf("over 100k requests: allocated blocks %d -> %d, gc objects %d -> %d, RSS %d -> %d KB", b0, b1, o0, o1, r0, r1)
	if b1-b0 > 500 || o1-o0 > 100 {
		t.Errorf("Python leaks: allocated blocks %d -> %d, gc objects %d -> %d", b0, b1, o0, o1)
	}
	if r1-r0 > 8<<10 {
		t.Errorf("RSS grew from %d to %d KB", r0, r1)
	}
}

// TestTimeout: a request still inside Python at the timeout gets 504 at
// once, the log has the Python stacks, OnTimeout is called; the process
// serves again once the call returns.
func TestTimeout(t *testing.T) {
	s := serve(t)
	var mu sync.Mutex
	var timedOut []string
	s.h.Timeout = 300 * time.Millisecond
	s.h.OnTimeout = func(r *http.Request, elapsed time.Duration) {
		mu.Lock()
		timedOut = append(timedOut, r.URL.Path)
		mu.Unlock()
	}
	for _, c := range []struct{ path, app, stack string }{
		{"/sleep?s=1", "", "time.sleep"},   // the GIL released
		{"/spin?0.8", "extra", "in extra"}, // pure Python: the GIL released on request
	} {
		t0 := time.Now()
		resp, body := do(t, "GET", s.URL+c.path, c.app, nil)
		if resp.StatusCode != 504 || time.Since(t0) > 800*time.Millisecond || !resp.Close {
			t.Errorf("%s: %d %q after %s (close %v), want 504 at the timeout, closing", c.path, resp.StatusCode, body, time.Since(t0), resp.Close)
		}
		waitFor(t, 3*time.Second, "the log", func() bool { return strings.Contains(s.log.String(), c.stack) })
		if !strings.Contains(s.log.String(), "timed out after") {
			t.Errorf("log:\n%s", s.log.String())
		}
		// Once the call returns the process serves again.
		waitFor(t, 3*time.Second, "the next request", func() bool {
			code, _ := get(t, s.URL+"/", "hello")
			return code == 200
		})
	}
	mu.Lock()
	if fmt.Sprint(timedOut) != "[/sleep /spin]" {
		t.Errorf("OnTimeout calls: %v", timedOut)
	}
	mu.Unlock()
	// A stream past the timeout is cut; close() still runs.
	resp, err := http.Get(s.URL + "/stream?key=t1&delay=0.4")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Error("a stream past the timeout must be cut")
	}
	waitFor(t, 3*time.Second, "close() of the timed-out stream", func() bool {
		return fmt.Sprint(pyInfo(t, s)["closed"].(map[string]any)["closed:t1"]) == "1"
	})
	if t.Failed() {
		t.Logf("log:\n%s", s.log.String())
	}
}

// discard is a reusable ResponseWriter for the benchmarks.
type discard struct {
	h    http.Header
	code int
	n    int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) WriteHeader(code int)        { d.code = code }
func (d *discard) Write(p []byte) (int, error) { d.n += len(p); return len(p), nil }
func (d *discard) Flush()                      {}

func benchRequest(b *testing.B, app, path string, want int) {
	h := &Handler{App: testApp(b)}
	req := httptest.NewRequest("GET", path, nil)
	req.Header.Set("X-Test-App", app)
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		clear(w.h)
		w.n = 0
		h.ServeHTTP(w, req)
		if w.code != 200 || w.n != want {
			b.Fatalf("%d, %d bytes", w.code, w.n)
		}
	}
	// CPU time is steadier than wall time on a shared machine.
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkHello is one hello-world request in-process: environ, app call,
// response (no network; the test app's router adds a dict lookup).
func BenchmarkHello(b *testing.B) { benchRequest(b, "hello", "/", 13) }

// BenchmarkFlask is one request to a Flask route returning text.
func BenchmarkFlask(b *testing.B) { benchRequest(b, "flask", "/", 17) }
