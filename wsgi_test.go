package hornbeam_test

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hornbeam-go/hornbeam"
)

// rawRequest sends raw bytes on a new connection and returns everything
// read until the server closes it or 5 s pass.
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

func hostOf(s *testServer) string {
	return strings.TrimPrefix(strings.TrimPrefix(s.URL, "http://"), "https://")
}

func echoEnviron(t *testing.T, resp *http.Response) map[string]any {
	t.Helper()
	defer resp.Body.Close()
	var env map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		t.Fatalf("decoding the environ: %v", err)
	}
	return env
}

func TestEnviron(t *testing.T) {
	s := start(t, "echo", hornbeam.Options{Workers: 1})
	req, _ := http.NewRequest("POST", s.URL+"/caf%C3%A9/a%20b?q=1&r=%20", strings.NewReader("hello"))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Add("X-Rep", "a")
	req.Header.Add("X-Rep", "b")
	req.Header.Set("X-Custom", "v")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	env := echoEnviron(t, resp)
	host, port, _ := net.SplitHostPort(hostOf(s))
	want := map[string]any{
		"REQUEST_METHOD":    "POST",
		"SCRIPT_NAME":       "",
		"PATH_INFO":         "/caf\u00c3\u00a9/a b", // UTF-8 bytes as latin-1, per PEP 3333
		"QUERY_STRING":      "q=1&r=%20",
		"CONTENT_TYPE":      "text/plain",
		"CONTENT_LENGTH":    "5",
		"SERVER_NAME":       host,
		"SERVER_PORT":       port,
		"SERVER_PROTOCOL":   "HTTP/1.1",
		"REMOTE_ADDR":       "127.0.0.1",
		"HTTP_HOST":         hostOf(s),
		"HTTP_X_REP":        "a,b",
		"HTTP_X_CUSTOM":     "v",
		"wsgi.url_scheme":   "http",
		"wsgi.multithread":  false,
		"wsgi.multiprocess": true,
		"wsgi.run_once":     false,
		"wsgi.input":        "BytesIO",
		"wsgi.errors":       "TextIOWrapper",
		"wsgi.file_wrapper": "callable",
		"wsgi.early_hints":  "callable",
	}
	for k, v := range want {
		if fmt.Sprint(env[k]) != fmt.Sprint(v) {
			t.Errorf("%s = %#v, want %#v", k, env[k], v)
		}
	}
	if v := fmt.Sprint(env["wsgi.version"]); v != "[1 0]" {
		t.Errorf("wsgi.version = %s", v)
	}
	if p, err := strconv.Atoi(fmt.Sprint(env["REMOTE_PORT"])); err != nil || p == 0 {
		t.Errorf("REMOTE_PORT = %v", env["REMOTE_PORT"])
	}
	if _, ok := env["HTTP_CONTENT_TYPE"]; ok {
		t.Error("Content-Type must be CONTENT_TYPE only, not HTTP_CONTENT_TYPE")
	}
}

func TestEnvironRawBytes(t *testing.T) {
	s := start(t, "echo", hornbeam.Options{Workers: 1})
	// A header value with a raw 0xE9 byte, a header with an underscore
	// (dropped: it could spoof X-Forwarded-For), HTTP/1.0.
	out := rawRequest(t, hostOf(s), "GET /x HTTP/1.0\r\nHost: h\r\nX-Name: caf\xe9\r\nX-Forwarded_For: 6.6.6.6\r\n\r\n")
	if !strings.HasPrefix(out, "HTTP/1.0 200") {
		t.Fatalf("HTTP/1.0 request: %q", out)
	}
	body := out[strings.Index(out, "\r\n\r\n")+4:]
	var env map[string]any
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatalf("%v: %q", err, body)
	}
	if env["HTTP_X_NAME"] != "caf\u00e9" {
		t.Errorf("HTTP_X_NAME = %q, want latin-1 decoded caf\u00e9", env["HTTP_X_NAME"])
	}
	if env["SERVER_PROTOCOL"] != "HTTP/1.0" {
		t.Errorf("SERVER_PROTOCOL = %v", env["SERVER_PROTOCOL"])
	}
	if _, ok := env["HTTP_X_FORWARDED_FOR"]; ok {
		t.Error("a header name with an underscore must not become HTTP_X_FORWARDED_FOR")
	}
}

func TestInput(t *testing.T) {
	s := start(t, "core", hornbeam.Options{Workers: 1})
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
			t.Run(fmt.Sprintf("%s/chunked=%v", c.mode, chunked), func(t *testing.T) {
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
				defer resp.Body.Close()
				var got struct {
					Parts  []string
					Length string
				}
				json.NewDecoder(resp.Body).Decode(&got)
				if strings.Join(got.Parts, "|") != strings.Join(c.want, "|") {
					t.Errorf("parts %q, want %q", got.Parts, c.want)
				}
				if got.Length != strconv.Itoa(len(body)) {
					t.Errorf("CONTENT_LENGTH %q, want %d (chunked bodies are de-chunked and measured)", got.Length, len(body))
				}
			})
		}
	}
}

// zeroReader yields n bytes of a repeating pattern without holding them.
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

func TestLargeUpload(t *testing.T) {
	s := start(t, "core", hornbeam.Options{Workers: 1})
	const size = 100 << 20
	h := sha256.New()
	io.Copy(h, &patternReader{n: size})
	want := hex.EncodeToString(h.Sum(nil))

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	req, _ := http.NewRequest("POST", s.URL+"/upload", &patternReader{n: size})
	req.ContentLength = size
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		SHA256   string
		N        int64
		Input    string
		Fileno   bool
		MaxrssKB int64 `json:"maxrss_kb"`
	}
	json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	runtime.ReadMemStats(&after)
	if got.SHA256 != want || got.N != size {
		t.Fatalf("the app read %d bytes with sha256 %s; want %d, %s", got.N, got.SHA256, size, want)
	}
	if !got.Fileno || got.Input != "BufferedReader" {
		t.Errorf("a 100 MB body should reach the app as a real file, got %s (fileno %v)", got.Input, got.Fileno)
	}
	if got.MaxrssKB > 80<<10 {
		t.Errorf("the worker's peak RSS is %d KB: it held the upload in memory", got.MaxrssKB)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 40<<20 {
		t.Errorf("the Go side allocated %d MB for a 100 MB upload: it should stream it to disk", alloc>>20)
	}
}

func TestSlowBodyDoesNotHoldWorker(t *testing.T) {
	s := start(t, "core", hornbeam.Options{Workers: 1})
	c, err := net.Dial("tcp", hostOf(s))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
	time.Sleep(200 * time.Millisecond)
	// The only worker must still be free for others while the body trickles.
	for i := 0; i < 3; i++ {
		t0 := time.Now()
		code, _ := get(t, s.URL+"/pid")
		if code != 200 || time.Since(t0) > 2*time.Second {
			t.Fatalf("request %d while a body trickles: %d after %s", i, code, time.Since(t0))
		}
	}
	io.WriteString(c, "cdefghij")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	contains(t, string(b), `"n": 10`, "the trickled body")
}

func TestStreaming(t *testing.T) {
	s := start(t, "core", hornbeam.Options{Workers: 1})
	t0 := time.Now()
	resp, err := http.Get(s.URL + "/stream?key=s1&delay=0.5")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ContentLength != -1 || resp.TransferEncoding == nil {
		t.Errorf("a generator response should be chunked, got length %d, TE %v", resp.ContentLength, resp.TransferEncoding)
	}
	br := bufio.NewReader(resp.Body)
	var arrivals []time.Duration
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			arrivals = append(arrivals, time.Since(t0))
		}
		if err != nil {
			break
		}
	}
	if len(arrivals) != 3 {
		t.Fatalf("got %d lines", len(arrivals))
	}
	// The first chunk comes before the generator finishes sleeping.
	if arrivals[0] > arrivals[2]-700*time.Millisecond {
		t.Errorf("chunks arrived at %v: the first was held back until the end", arrivals)
	}
	waitFor(t, 3*time.Second, "close() of the iterable", func() bool {
		v, ok, _ := s.StateGet("closed:s1")
		return ok && v == int64(1)
	})
}

func TestCloseCalledOnList(t *testing.T) {
	s := start(t, "core", hornbeam.Options{Workers: 1})
	code, body := get(t, s.URL+"/close-list?key=l1")
	if code != 200 || body != "listed" {
		t.Fatalf("%d %q", code, body)
	}
	// close() runs once the response is sent.
	waitFor(t, 3*time.Second, "close() of a list subclass result", func() bool {
		v, _, _ := s.StateGet("closed:l1")
		return v == int64(1)
	})
}

func TestWriteCallable(t *testing.T) {
	s := start(t, "core", hornbeam.Options{Workers: 1})
	_, body := get(t, s.URL+"/write")
	if body != "via write(); then the iterable" {
		t.Errorf("body %q", body)
	}
}

func TestAppErrors(t *testing.T) {
	s := start(t, "core", hornbeam.Options{Workers: 1})
	cases := []struct {
		path, log string
	}{
		{"/boom", "kaboom before the response"},
		{"/bad-header", "invalid response header value"},
		{"/bad-header-name", "invalid response header name"},
		{"/str-subclass-header", "invalid response header value for Content-Type"},
		{"/non-latin1-header", "not latin-1"},
		{"/bad-status", "invalid status"},
		{"/no-start", "before calling start_response"},
		{"/not-iterable", "not iterable"},
		{"/str-body", "must be bytes, got str"},
	}
	get(t, s.URL+"/pid") // a valid ("Content-Type", "text/plain"), which the worker then remembers
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			resp, err := http.Get(s.URL + c.path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 500 {
				t.Errorf("status %d, want 500", resp.StatusCode)
			}
			if strings.Contains(string(b), "should not be sent") || resp.Header.Get("X-Injected") != "" || resp.Header.Get("X-Evil") != "" {
				t.Errorf("the bad response leaked: %v %q", resp.Header, b)
			}
			waitFor(t, 2*time.Second, "the error in the log", func() bool { return strings.Contains(s.Log.String(), c.log) })
		})
	}
	contains(t, s.Log.String(), "Traceback (most recent call last)", "error log")
	// The worker survived all of that.
	if code, _ := get(t, s.URL+"/pid"); code != 200 {
		t.Errorf("after app errors: %d", code)
	}
}

func TestExcInfo(t *testing.T) {
	s := start(t, "core", hornbeam.Options{Workers: 1})
	resp, err := http.Get(s.URL + "/exc_info")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || string(b) != "recovered with exc_info" {
		t.Errorf("start_response with exc_info before sending: %d %q", resp.StatusCode, b)
	}
	// After the headers are sent, start_response(exc_info) re-raises: the
	// connection is cut.
	resp, err = http.Get(s.URL + "/exc_info_late")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Error("a failure after the response started must cut the connection")
	}
	waitFor(t, 2*time.Second, "log", func() bool { return strings.Contains(s.Log.String(), "too late") })
}

func TestErrorAfterStartCutsConnection(t *testing.T) {
	s := start(t, "core", hornbeam.Options{Workers: 1})
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
}

func TestMalformedRequest(t *testing.T) {
	s := start(t, "core", hornbeam.Options{Workers: 1})
	out := rawRequest(t, hostOf(s), "THIS IS NOT HTTP\r\n\r\n")
	if !strings.HasPrefix(out, "HTTP/1.1 400") {
		t.Errorf("garbage got %q, want 400", out)
	}
}

// TestWorkerDeath: a worker killed mid-request is logged with its signal
// and replaced; the request gets 502 (process mode) or its connection is
// cut (embedded mode: the worker held it).
func TestWorkerDeath(t *testing.T) {
	s := start(t, "core", hornbeam.Options{Workers: 1})
	_, pid1 := get(t, s.URL+"/pid")
	code, err := getOnce(s.URL + "/die")
	wantDeathAnswer(t, s, "a worker dying mid-request", code, err)
	var pid2 string
	waitFor(t, 10*time.Second, "a replacement worker", func() bool {
		resp, err := http.Get(s.URL + "/pid")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		pid2 = string(b)
		return resp.StatusCode == 200
	})
	if pid1 == pid2 {
		t.Errorf("same pid %s after death", pid1)
	}
	contains(t, s.Log.String(), "worker "+pid1+" (slot 1) was killed by signal 9 (SIGKILL", "error log")
	if !s.Embedded() { // an embedded worker's requests are its own
		contains(t, s.Log.String(), "GET /die", "error log names the request the worker held")
	}
}

func TestTimeout(t *testing.T) {
	s := start(t, "core", hornbeam.Options{Workers: 1, Timeout: time.Second})
	_, pid1 := get(t, s.URL+"/pid")
	t0 := time.Now()
	code, _ := get(t, s.URL+"/hang")
	if code != 504 {
		t.Errorf("a hung request gave %d, want 504", code)
	}
	if d := time.Since(t0); d < time.Second || d > 4*time.Second {
		t.Errorf("504 after %s with --timeout 1s", d)
	}
	waitForReplacement(t, s, pid1)
	// The log names the request and shows where the worker was stuck.
	log := s.Log.String()
	contains(t, log, "request GET /hang (request id ", "error log")
	contains(t, log, ") timed out after 1", "error log")
	// faulthandler's dump names the file, the line and the function.
	if !regexp.MustCompile(`core\.py", line \d+,? in spin_forever`).MatchString(log) {
		t.Errorf("the error log lacks the hung function with its line; got:\n%s", log)
	}
}

func TestWorkerLogs(t *testing.T) {
	s := start(t, "core", hornbeam.Options{Workers: 1})
	_, pid := get(t, s.URL+"/pid")
	get(t, s.URL+"/log")
	for _, line := range []string{"printed to stdout by the app", "written to wsgi.errors"} {
		waitFor(t, 2*time.Second, line, func() bool {
			return strings.Contains(s.Log.String(), "[worker "+pid+"] "+line)
		})
	}
}

func TestFileWrapper(t *testing.T) {
	s := start(t, "core", hornbeam.Options{Workers: 1})
	dir := t.TempDir()
	path := filepath.Join(dir, "big")
	f, _ := os.Create(path)
	const size = 1 << 30 // sparse: no disk used
	f.Truncate(size)
	f.WriteAt([]byte("the end"), size-7)
	f.Close()

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	resp, err := http.Get(s.URL + "/file?path=" + url.QueryEscape(path))
	if err != nil {
		t.Fatal(err)
	}
	if resp.ContentLength != size {
		t.Errorf("Content-Length %d, want %d", resp.ContentLength, size)
	}
	buf := make([]byte, 1<<20)
	var n int64
	var last []byte
	for {
		k, err := resp.Body.Read(buf)
		n += int64(k)
		if k > 0 {
			last = append(last[:0], buf[max(0, k-7):k]...)
		}
		if err != nil {
			break
		}
	}
	resp.Body.Close()
	runtime.ReadMemStats(&after)
	if n != size || string(last) != "the end" {
		t.Errorf("downloaded %d bytes ending %q", n, last)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
		t.Errorf("the Go side allocated %d MB sending a 1 GB file", alloc>>20)
	}
	_, rss := get(t, s.URL+"/rss")
	var r struct {
		MaxrssKB int64 `json:"maxrss_kb"`
	}
	json.Unmarshal([]byte(rss), &r)
	if r.MaxrssKB > 80<<10 {
		t.Errorf("worker peak RSS %d KB after sending a 1 GB file", r.MaxrssKB)
	}
	// An offset set by the app is honoured.
	os.WriteFile(path, []byte("0123456789"), 0o644)
	_, body := get(t, s.URL+"/file?offset=4&path="+url.QueryEscape(path))
	if body != "456789" {
		t.Errorf("with offset 4: %q", body)
	}
}

func TestEarlyHintsHTTP1(t *testing.T) {
	s := start(t, "core", hornbeam.Options{Workers: 1})
	out := rawRequest(t, hostOf(s), "GET /hints HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	i103 := strings.Index(out, "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n")
	i200 := strings.Index(out, "HTTP/1.1 200 OK")
	if i103 < 0 || i200 < i103 {
		t.Errorf("want 103 with the Link header before the 200:\n%s", out)
	}
}

func TestKeepAlive(t *testing.T) {
	s := start(t, "core", hornbeam.Options{Workers: 1})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	var reused []bool
	for i := 0; i < 3; i++ {
		trace := &httptrace.ClientTrace{GotConn: func(ci httptrace.GotConnInfo) { reused = append(reused, ci.Reused) }}
		req, _ := http.NewRequest("GET", s.URL+"/pid", nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if fmt.Sprint(reused) != "[false true true]" {
		t.Errorf("connection reuse %v, want [false true true]", reused)
	}
}

func h2cClient() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p}, Timeout: 10 * time.Second}
}

func TestH2C(t *testing.T) {
	s := start(t, "echo", hornbeam.Options{Workers: 1})
	resp, err := h2cClient().Get(s.URL + "/h2")
	if err != nil {
		t.Fatal(err)
	}
	if resp.ProtoMajor != 2 {
		t.Fatalf("proto %s", resp.Proto)
	}
	env := echoEnviron(t, resp)
	if env["SERVER_PROTOCOL"] != "HTTP/2" || env["wsgi.url_scheme"] != "http" {
		t.Errorf("h2c environ: %v %v", env["SERVER_PROTOCOL"], env["wsgi.url_scheme"])
	}
}

func TestEarlyHintsHTTP2(t *testing.T) {
	s := start(t, "core", hornbeam.Options{Workers: 1})
	var got []string
	var mu sync.Mutex
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		mu.Lock()
		got = append(got, fmt.Sprintf("%d %s", code, h.Get("Link")))
		mu.Unlock()
		return nil
	}}
	req, _ := http.NewRequest("GET", s.URL+"/hints", nil)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	resp, err := h2cClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || string(b) != "after hints" {
		t.Fatalf("%s %q", resp.Proto, b)
	}
	if len(got) != 1 || got[0] != "103 </style.css>; rel=preload; as=style" {
		t.Errorf("1xx responses over HTTP/2: %q", got)
	}
}

func TestTLSAndHTTP2(t *testing.T) {
	cert, key := selfSigned(t)
	s := start(t, "echo", hornbeam.Options{Workers: 1, CertFile: cert, KeyFile: key})
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(s.URL + "/tls")
	if err != nil {
		t.Fatal(err)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("ALPN should give HTTP/2, got %s", resp.Proto)
	}
	env := echoEnviron(t, resp)
	if env["wsgi.url_scheme"] != "https" || env["SERVER_PROTOCOL"] != "HTTP/2" {
		t.Errorf("TLS environ: %v %v", env["wsgi.url_scheme"], env["SERVER_PROTOCOL"])
	}
	// HTTP/1.1 over TLS too.
	tr1 := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
	resp, err = (&http.Client{Transport: tr1, Timeout: 10 * time.Second}).Get(s.URL + "/tls1")
	if err != nil {
		t.Fatal(err)
	}
	env = echoEnviron(t, resp)
	if env["SERVER_PROTOCOL"] != "HTTP/1.1" || env["wsgi.url_scheme"] != "https" {
		t.Errorf("TLS HTTP/1.1 environ: %v %v", env["SERVER_PROTOCOL"], env["wsgi.url_scheme"])
	}
}

func TestRecyclingUnderLoad(t *testing.T) {
	s := start(t, "core", hornbeam.Options{Workers: 2, MaxRequests: 25, MaxRequestsJitter: 5})
	var wg sync.WaitGroup
	var mu sync.Mutex
	pids := map[string]bool{}
	failures := 0
	client := &http.Client{Timeout: 20 * time.Second}
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 60; i++ {
				resp, err := client.Get(s.URL + "/pid?sleep=0.01")
				if err != nil {
					mu.Lock()
					failures++
					mu.Unlock()
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				mu.Lock()
				if resp.StatusCode != 200 {
					failures++
				}
				pids[string(b)] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if failures > 0 {
		t.Errorf("%d of 480 requests failed while workers were recycled", failures)
	}
	if len(pids) < 6 {
		t.Errorf("480 requests at --max-requests 25 were served by only %d workers", len(pids))
	}
	contains(t, s.Log.String(), "--max-requests", "recycle reason in the log")
}

func TestStopFinishesInFlight(t *testing.T) {
	s := start(t, "core", hornbeam.Options{Workers: 1})
	done := make(chan string, 1)
	go func() {
		resp, err := http.Get(s.URL + "/sleep?s=1")
		if err != nil {
			done <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	time.Sleep(300 * time.Millisecond)
	ctx, cancel := contextWithTimeout(10 * time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if got := <-done; got != "200 slept" {
		t.Errorf("in-flight request during Stop: %s", got)
	}
}

func TestCrashLogged(t *testing.T) {
	s := start(t, "core", hornbeam.Options{Workers: 1})
	crashLogged(t, s)
}

// crashLogged: a worker that segfaults in the app is logged with its
// signal and the Python traceback of the crash (faulthandler), and is
// replaced. The request gets 502 (process mode) or its connection is cut
// (embedded mode, where Go's runtime catches the signal: the log says so,
// with the goroutine that took it and not Go's whole report).
func crashLogged(t *testing.T, s *testServer) {
	t.Helper()
	_, pid := get(t, s.URL+"/pid")
	code, err := getOnce(s.URL + "/segv")
	wantDeathAnswer(t, s, "a segfaulting worker", code, err)
	waitFor(t, 10*time.Second, "the crash to be logged", func() bool {
		return strings.Contains(s.Log.String(), "worker "+pid+" (slot 1) was killed by signal 11 (SIGSEGV")
	})
	waitForReplacement(t, s, pid)
	log := s.Log.String()
	contains(t, log, "Fatal Python error: Segmentation fault", "faulthandler's report")
	contains(t, log, `core.py", line`, "the Python traceback of the crash")
	if !s.Embedded() {
		contains(t, log, "it held: GET /segv", "the request the worker held")
		return
	}
	if s.Hosted() {
		// Go's runtime in the library passes a fault outside Go code to
		// the handler installed before it, faulthandler's, which re-raises
		// the signal after its report: the process dies of it.
		contains(t, log, "[WARNING] worker "+pid+" (slot 1) was killed by signal 11 (SIGSEGV, segmentation fault)", "the crash")
		return
	}
	contains(t, log, "[ERROR] worker "+pid+" (slot 1) was killed by signal 11 (SIGSEGV, caught by Go's runtime, which exited with status 2)", "the crash")
	contains(t, log, "["+"worker "+pid+"] SIGSEGV: segmentation violation", "Go's report")
	contains(t, log, "wsgiembed.(*App).callHandle", "the goroutine that took the signal")
	if !regexp.MustCompile(`\[worker `+pid+`\] \(\d+ more lines of Go's crash report not shown`).MatchString(log) || strings.Contains(log, "[GC sweep wait]") {
		t.Errorf("Go's report of the other goroutines was not left out")
	}
}

// Bodies just under the spool threshold travel inline, here in 1 MiB frames,
// queued behind each other on one worker's socket: none may stall.
func TestPipelinedLargeInlineBodies(t *testing.T) {
	s := start(t, "core", hornbeam.Options{Workers: 1, Timeout: 10 * time.Second, SpoolThreshold: 1 << 20})
	body := strings.Repeat("b", 1<<20-100)
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := (&http.Client{Timeout: 15 * time.Second}).Post(s.URL+"/upload", "text/plain", strings.NewReader(body))
			if err != nil {
				errs <- err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(b), fmt.Sprintf(`"n": %d`, len(body))) {
				errs <- fmt.Sprintf("%d %s", resp.StatusCode, b)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// The same app behaviours over HTTP/2 (h2c): a streamed response arrives
// chunk by chunk, a spooled upload arrives whole, a file is sent whole.
func TestHTTP2Bodies(t *testing.T) {
	s := start(t, "core", hornbeam.Options{Workers: 1})
	c := h2cClient()

	t0 := time.Now()
	resp, err := c.Get(s.URL + "/stream?key=h2&delay=0.4")
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	first, _ := br.ReadString('\n')
	firstAt := time.Since(t0)
	rest, _ := io.ReadAll(br)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || first+string(rest) != "one\ntwo\nthree\n" {
		t.Fatalf("%s: %q %q", resp.Proto, first, rest)
	}
	if firstAt > time.Since(t0)-500*time.Millisecond {
		t.Errorf("the first chunk came at %s, with the rest: not streamed", firstAt)
	}

	const size = 3 << 20
	h := sha256.New()
	io.Copy(h, &patternReader{n: size})
	req, _ := http.NewRequest("POST", s.URL+"/upload", &patternReader{n: size})
	req.ContentLength = size
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	contains(t, string(b), hex.EncodeToString(h.Sum(nil)), "sha256 of a 3 MB upload over HTTP/2")

	path := filepath.Join(t.TempDir(), "f")
	data := strings.Repeat("0123456789", 100000)
	os.WriteFile(path, []byte(data), 0o644)
	resp, err = c.Get(s.URL + "/file?path=" + url.QueryEscape(path))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != data || resp.ContentLength != int64(len(data)) {
		t.Errorf("file over HTTP/2: %d bytes (Content-Length %d), want %d", len(b), resp.ContentLength, len(data))
	}
}

// A client that does not read a large generated response must not hold
// the worker: Go takes the response off its hands (memory, then a
// temporary file) and the worker goes on with the next request.
func TestSlowReaderDoesNotHoldWorker(t *testing.T) {
	s := start(t, "core", hornbeam.Options{Workers: 1})
	c, err := net.Dial("tcp", hostOf(s))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /bigstream?mb=40 HTTP/1.1\r\nHost: x\r\n\r\n") // and read nothing yet
	time.Sleep(300 * time.Millisecond)
	t0 := time.Now()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(s.URL + "/pid")
	if err != nil {
		t.Fatalf("the only worker is held by a client that does not read: %v", err)
	}
	resp.Body.Close()
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("a request waited %s behind a client that does not read", d)
	}
	// The slow client still gets the whole response, in order.
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	r, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, r.Body)
	if err != nil || n != 40<<20 {
		t.Errorf("the slow client read %d bytes (%v), want %d", n, err, 40<<20)
	}
}

// Request bodies up to the spool threshold (64 KiB unless set) reach the
// app in memory; larger ones as a real file spooled by Go.
func TestSpoolThreshold(t *testing.T) {
	cases := []struct {
		threshold int64
		size      int
		want      string
	}{
		{0, 64 << 10, "BytesIO"},
		{0, 64<<10 + 1, "BufferedReader"},
		{1 << 20, 64<<10 + 1, "BytesIO"},
		{1 << 20, 1<<20 + 1, "BufferedReader"},
	}
	servers := map[int64]*testServer{}
	for _, c := range cases {
		s := servers[c.threshold]
		if s == nil {
			s = start(t, "core", hornbeam.Options{Workers: 1, SpoolThreshold: c.threshold})
			servers[c.threshold] = s
		}
		resp, err := http.Post(s.URL+"/upload", "application/octet-stream", strings.NewReader(strings.Repeat("x", c.size)))
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			N     int
			Input string
		}
		json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if got.N != c.size || got.Input != c.want {
			t.Errorf("threshold %d, body of %d bytes: the app read %d bytes from a %s, want %s", c.threshold, c.size, got.N, got.Input, c.want)
		}
	}
}

// A worker that writes garbage on its state socket is killed and replaced;
// the request it held gets 502 (its connection is cut in the embedded
// mode) and the log says why.
func TestStateSocketGarbage(t *testing.T) {
	s := start(t, "core", hornbeam.Options{Workers: 1})
	_, pid1 := get(t, s.URL+"/pid")
	code, err := getOnce(s.URL + "/state-garbage")
	wantDeathAnswer(t, s, "a worker corrupting its state socket", code, err)
	contains(t, s.Log.String(), "worker "+pid1+": state socket: wire protocol error: Request frame on the state socket; killing it", "error log")
	waitFor(t, 10*time.Second, "a replacement worker", func() bool {
		code, pid2 := get(t, s.URL+"/pid")
		return code == 200 && pid2 != pid1
	})
	contains(t, s.Log.String(), "worker "+pid1+" (slot 1) was killed by signal 9 (SIGKILL", "error log")
	if n := strings.Count(s.Log.String(), "state socket: wire protocol error"); n != 1 {
		t.Errorf("%d workers killed for state socket garbage, want 1 (the request went to the replacement too?)", n)
	}
}
