package asgi_test

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// events returns the app's /events counters.
func (s *server) events() map[string]any {
	s.t.Helper()
	code, body := s.get("/events")
	var ev map[string]any
	if code != 200 || json.Unmarshal([]byte(body), &ev) != nil {
		s.t.Fatalf("/events: %d %s", code, body)
	}
	return ev
}

// waitEvent polls /events until key has a value that satisfies ok.
func (s *server) waitEvent(key string, d time.Duration, ok func(any) bool) any {
	s.t.Helper()
	deadline := time.Now().Add(d)
	for {
		v, there := s.events()[key]
		if there && ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("/events[%q] = %v after %s", key, v, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestScope(t *testing.T) {
	s := start(t, nil, "asgi_app:app")
	req, _ := http.NewRequest("GET", s.url("/scope/a%2Fb?a=1&b=%20"), nil)
	req.Header.Add("X-Twice", "one")
	req.Header.Add("X-Twice", "two")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var sc struct {
		Type, Method, Path, RawPath, QueryString, RootPath, HTTPVersion, Scheme string
		Asgi                                                                    map[string]string
		Headers                                                                 [][2]string
		Client, Server                                                          []any
		Extensions                                                              []string
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	for k, dst := range map[string]any{"type": &sc.Type, "method": &sc.Method, "path": &sc.Path, "raw_path": &sc.RawPath,
		"query_string": &sc.QueryString, "root_path": &sc.RootPath, "http_version": &sc.HTTPVersion, "scheme": &sc.Scheme,
		"asgi": &sc.Asgi, "headers": &sc.Headers, "client": &sc.Client, "server": &sc.Server, "extensions": &sc.Extensions} {
		if err := json.Unmarshal(raw[k], dst); err != nil {
			t.Fatalf("scope[%q]: %v in %s", k, err, body)
		}
	}
	checks := []struct{ name, got, want string }{
		{"type", sc.Type, "http"}, {"method", sc.Method, "GET"},
		{"path", sc.Path, "/scope/a/b"}, {"raw_path", sc.RawPath, "/scope/a%2Fb"},
		{"query_string", sc.QueryString, "a=1&b=%20"}, {"root_path", sc.RootPath, ""},
		{"http_version", sc.HTTPVersion, "1.1"}, {"scheme", sc.Scheme, "http"},
		{"asgi.version", sc.Asgi["version"], "3.0"}, {"asgi.spec_version", sc.Asgi["spec_version"], "2.4"},
		{"headers[0]", fmt.Sprint(sc.Headers[0]), "[host " + s.addr + "]"},
		{"client host", fmt.Sprint(sc.Client[0]), "127.0.0.1"},
		{"server", fmt.Sprint(sc.Server), "[127.0.0.1 " + s.addr[strings.LastIndex(s.addr, ":")+1:] + "]"},
		{"extensions", strings.Join(sc.Extensions, ","), "http.response.early_hint,http.response.pathsend,http.response.trailers,http.response.zerocopysend"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	var twice []string
	for _, h := range sc.Headers {
		if h[0] != strings.ToLower(h[0]) {
			t.Errorf("header name %q is not lower case", h[0])
		}
		if h[0] == "x-twice" {
			twice = append(twice, h[1])
		}
	}
	if strings.Join(twice, ",") != "one,two" {
		t.Errorf("repeated header: %q, want [one two] as two entries", twice)
	}
}

func TestRequestBody(t *testing.T) {
	s := start(t, nil, "asgi_app:app")
	big := bytes.Repeat([]byte("0123456789abcdef"), 300_000/16)
	tests := []struct {
		name     string
		body     []byte
		chunked  bool
		messages func(int) bool // how many http.request messages the app got
	}{
		{"empty", nil, false, func(n int) bool { return n == 1 }},
		{"small in one message", []byte("hello"), false, func(n int) bool { return n == 1 }},
		{"300 KB in 64 KiB chunks", big, false, func(n int) bool { return n >= 5 }},
		{"chunked upload", big, true, func(n int) bool { return n >= 2 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r io.Reader = bytes.NewReader(tt.body)
			if tt.chunked {
				r = io.MultiReader(r) // hides the length: Go sends it chunked
			}
			req, _ := http.NewRequest("POST", s.url("/body"), r)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var got struct {
				Length   int
				Sha256   string
				Messages int
			}
			if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(tt.body)
			if got.Length != len(tt.body) || got.Sha256 != hex.EncodeToString(sum[:]) {
				t.Errorf("app got %d bytes (sha256 %s), want %d", got.Length, got.Sha256, len(tt.body))
			}
			if !tt.messages(got.Messages) {
				t.Errorf("the body came in %d http.request messages", got.Messages)
			}
		})
	}
}

// After the body, receive() waits until the client really leaves; then it
// returns http.disconnect and send() raises an OSError (spec 2.4).
func TestDisconnect(t *testing.T) {
	s := start(t, nil, "asgi_app:app")
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET /disconnect HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(res.Body).ReadString('\n')
	if err != nil || line != "started\n" {
		t.Fatalf("first chunk %q, %v", line, err)
	}
	time.Sleep(300 * time.Millisecond)
	if v, ok := s.events()["disconnect"]; ok {
		t.Fatalf("receive() returned %v while the client was still connected", v)
	}
	c.Close()
	s.waitEvent("disconnect", 5*time.Second, func(v any) bool { return v == "http.disconnect" })
	s.waitEvent("send_after", 5*time.Second, func(v any) bool { return v == "OSError:ClientDisconnected" })
}

func TestEarlyHints(t *testing.T) {
	s := start(t, nil, "asgi_app:app")
	var hints []string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		if code == 103 {
			hints = append(hints, h.Values("Link")...)
		}
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), "GET", s.url("/hints"), nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != "hinted\n" {
		t.Errorf("final response %d %q", res.StatusCode, body)
	}
	if len(hints) != 1 || hints[0] != "</style.css>; rel=preload; as=style" {
		t.Errorf("103 Link headers %q", hints)
	}
	if res.Header.Get("Link") != "" {
		t.Errorf("the hint's Link leaked into the final response: %q", res.Header.Get("Link"))
	}
}

func TestTrailers(t *testing.T) {
	s := start(t, nil, "asgi_app:app")
	for _, te := range []bool{true, false} {
		req, _ := http.NewRequest("GET", s.url("/trailers"), nil)
		if te {
			req.Header.Set("TE", "trailers")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		got := res.Trailer.Get("X-Checksum")
		if string(body) != "body\n" {
			t.Errorf("TE: trailers %v: body %q", te, body)
		}
		if te && got != "abc123" {
			t.Errorf("with TE: trailers: trailer X-Checksum = %q, want abc123 (trailers %v)", got, res.Trailer)
		}
		if !te && got != "" {
			t.Errorf("without TE: trailers the client got trailer %q", got)
		}
	}
}

func TestPathsend(t *testing.T) {
	s := start(t, nil, "asgi_app:app")
	data := bytes.Repeat([]byte("pathsend!"), 30_000)
	path := filepath.Join(t.TempDir(), "f.bin")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := http.Get(s.url("/file?path=" + path))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !bytes.Equal(body, data) || res.ContentLength != int64(len(data)) {
		t.Errorf("status %d, %d bytes (Content-Length %d), want %d", res.StatusCode, len(body), res.ContentLength, len(data))
	}
	code, _ := s.get("/file?path=/nonexistent/file")
	if code != 500 {
		t.Errorf("a missing file: status %d, want 500", code)
	}
	s.waitLog(5*time.Second, "http.response.pathsend", "/nonexistent/file")
}

// --timeout cancels the request's task (504); the worker stays.
func TestTimeoutCancelsTask(t *testing.T) {
	s := start(t, nil, "asgi_app:app", "--timeout", "1s")
	_, pid := s.get("/pid")
	began := time.Now()
	code, _ := s.get("/sleep?s=20")
	if took := time.Since(began); code != 504 || took > 5*time.Second {
		t.Fatalf("status %d after %s, want 504 after about 1s", code, took)
	}
	s.waitEvent("cancelled", 5*time.Second, func(v any) bool { return v == float64(1) })
	if _, again := s.get("/pid"); again != pid {
		t.Errorf("the worker changed (%s, then %s): a timeout must cancel the task, not replace the worker", pid, again)
	}
	s.waitLog(5*time.Second, "timed out after", "its task is cancelled")
	// A response that has started is not cut at --timeout: 3 events 0.6 s
	// apart outlast it.
	code, body := s.get("/sse?n=3&gap=0.6")
	if code != 200 || body != "data: 0\n\ndata: 1\n\ndata: 2\n\n" {
		t.Errorf("server-sent events past --timeout: %d %q, want all three", code, body)
	}
}

func TestAppErrors(t *testing.T) {
	s := start(t, nil, "asgi_app:app")
	for _, c := range []struct{ path, log string }{
		{"/error", "RuntimeError: boom in /error"},
		{"/noresponse", "returned without sending a response"},
	} {
		code, body := s.get(c.path)
		if code != 500 || !strings.Contains(body, "Internal Server Error") {
			t.Errorf("%s: %d %q, want 500", c.path, code, body)
		}
		s.waitLog(5*time.Second, c.log)
	}
	if code, _ := s.get("/pid"); code != 200 {
		t.Errorf("after the errors: %d", code)
	}
}

// A client that does not read makes the app's send() wait: the app gets
// no further than the window plus the socket buffers.
func TestBackpressure(t *testing.T) {
	s := start(t, nil, "asgi_app:app")
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.TCPConn).SetReadBuffer(64 << 10)
	fmt.Fprintf(c, "GET /stream?chunks=4000 HTTP/1.1\r\nHost: x\r\n\r\n") // 250 MiB
	s.waitEvent("streamed", 5*time.Second, func(v any) bool { return v.(float64) > 0 })
	time.Sleep(time.Second)
	first := s.events()["streamed"].(float64)
	time.Sleep(500 * time.Millisecond)
	second := s.events()["streamed"].(float64)
	if first > 32<<20 || second != first {
		t.Fatalf("the app sent %.0f then %.0f bytes to a client that reads nothing: send() does not wait", first, second)
	}
	// Reading lets it go on.
	n, _ := io.CopyN(io.Discard, c, 64<<20)
	if n != 64<<20 {
		t.Fatalf("read %d bytes", n)
	}
	s.waitEvent("streamed", 5*time.Second, func(v any) bool { return v.(float64) > second })
}

func TestLifespan(t *testing.T) {
	done := filepath.Join(t.TempDir(), "shutdown")
	s := start(t, []string{"ASGI_SHUTDOWN_FILE=" + done}, "asgi_app:app")
	code, body := s.get("/state")
	if code != 200 || !strings.Contains(body, `"started": "yes"`) {
		t.Fatalf("/state: %d %s (scope[\"state\"] must carry what startup stored)", code, body)
	}
	s.stop()
	b, err := os.ReadFile(done)
	if err != nil || !strings.HasPrefix(string(b), "shutdown ") {
		t.Fatalf("lifespan shutdown did not run: %q, %v\n%s", b, err, s.log.String())
	}
}

// A startup failure stops the server as an import error does; --lifespan
// on refuses an app without lifespan; auto serves it and says so.
func TestLifespanFailures(t *testing.T) {
	needPython(t)
	ex, _ := filepath.Abs("../examples")
	tests := []struct {
		name string
		env  []string
		args []string
		app  string
		want []string
	}{
		{"startup failed", []string{"ASGI_LIFESPAN=fail"}, nil, "asgi_app:app", []string{"lifespan startup failed", "no database (ASGI_LIFESPAN=fail)"}},
		{"on, unsupported", nil, []string{"--lifespan", "on"}, "asgi_hello:app", []string{"--lifespan on", "not supported"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--python", python, "-w", "1", "-k", "asgi", "-b", "127.0.0.1:0", "--pythonpath", ex}, tt.args...)
			cmd := exec.Command(hornbeamBin, append(args, tt.app)...)
			cmd.Env = append(append(os.Environ(), "TMPDIR="+t.TempDir()), tt.env...)
			cmd.WaitDelay = 5 * time.Second
			out, err := runBounded(cmd, 20*time.Second)
			if err == nil {
				t.Fatalf("hornbeam served; want it to stop:\n%s", out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
	t.Run("auto, unsupported", func(t *testing.T) {
		s := start(t, nil, "asgi_hello:app")
		if code, body := s.get("/"); code != 200 || body != "Hello, World!" {
			t.Errorf("%d %q", code, body)
		}
		s.waitLog(5*time.Second, "ASGI lifespan", "serving without it")
	})
}

// runBounded runs cmd and returns its output; it is killed after d.
func runBounded(cmd *exec.Cmd, d time.Duration) (string, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	t := time.AfterFunc(d, func() { cmd.Process.Kill() })
	defer t.Stop()
	err := cmd.Wait()
	return out.String(), err
}

// The process worker mode cannot run an ASGI app: one line says how.
func TestProcessModeSaysHow(t *testing.T) {
	needPython(t)
	ex, _ := filepath.Abs("../examples")
	cmd := exec.Command(hornbeamBin, "--worker-mode", "process", "--python", python, "-w", "1", "-b", "127.0.0.1:0", "--pythonpath", ex, "asgi_hello:app")
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	out, err := runBounded(cmd, 20*time.Second)
	if err == nil || !strings.Contains(out, "asgi_hello:app is an ASGI application") || !strings.Contains(out, "-k asgi") {
		t.Fatalf("want a failure naming -k asgi, got %v:\n%s", err, out)
	}
}

// A task that blocks the event loop past --timeout gets the worker's
// stacks logged and the worker replaced.
func TestBlockedLoop(t *testing.T) {
	s := start(t, nil, "asgi_app:app", "--timeout", "1s", "--graceful-timeout", "2s")
	_, pid := s.get("/pid")
	go http.Get(s.url("/block?s=30"))
	s.waitLog(10*time.Second, "ASGI event loop has not answered for 1s", "time.sleep(float(_q(scope", "MainThread", "The event loop's ", "task(s):", "<Task pending")
	deadline := time.Now().Add(15 * time.Second)
	for {
		if code, now := s.get("/pid"); code == 200 && now != pid {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the blocked worker was not replaced")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Over TLS (HTTP/2 by ALPN) the scope says https and HTTP/2, and the tls
// extension gives the version and cipher suite.
func TestTLSScope(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSigned(t, cert, key)
	s := start(t, nil, "asgi_app:app", "--certfile", cert, "--keyfile", key)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}}
	res, err := client.Get("https://" + s.addr + "/scope")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var sc struct {
		Scheme      string `json:"scheme"`
		HTTPVersion string `json:"http_version"`
		TLS         *struct {
			Version int   `json:"tls_version"`
			Cipher  int   `json:"cipher_suite"`
			Chain   []any `json:"client_cert_chain"`
		} `json:"tls"`
	}
	if err := json.Unmarshal(body, &sc); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if sc.Scheme != "https" || sc.HTTPVersion != "2" || sc.TLS == nil {
		t.Fatalf("scheme %q, http_version %q, tls %v: %s", sc.Scheme, sc.HTTPVersion, sc.TLS, body)
	}
	if sc.TLS.Version != tls.VersionTLS13 || sc.TLS.Cipher != int(res.TLS.CipherSuite) || len(sc.TLS.Chain) != 0 {
		t.Errorf("tls extension %+v, want version %#x, cipher %#x, no client chain", *sc.TLS, tls.VersionTLS13, res.TLS.CipherSuite)
	}
	// HTTP/2 carries trailers without TE: trailers.
	res, err = client.Get("https://" + s.addr + "/trailers")
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(res.Body)
	res.Body.Close()
	if res.ProtoMajor != 2 || res.Trailer.Get("X-Checksum") != "abc123" {
		t.Errorf("h2 trailers: proto %d, trailer %q, want abc123", res.ProtoMajor, res.Trailer.Get("X-Checksum"))
	}
}

func writeSelfSigned(t *testing.T, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
}

// An ASGI 2 double callable (a class) is recognised and served.
func TestASGI2(t *testing.T) {
	s := start(t, nil, "asgi_hello:App2")
	if code, body := s.get("/"); code != 200 || body != "Hello from ASGI 2" {
		t.Errorf("%d %q", code, body)
	}
}

// http.response.zerocopysend: Go sends the app's file from its descriptor,
// with an offset and a count, or from the file's position to its end; the
// app's file position is left alone.
func TestZeroCopySend(t *testing.T) {
	s := start(t, nil, "asgi_app:app")
	data := make([]byte, 300_000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	path := filepath.Join(t.TempDir(), "z.bin")
	os.WriteFile(path, data, 0o644)
	res, err := http.Get(s.url("/zerocopy?path=" + path))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	want := append(append([]byte(nil), data[5:105]...), data[10:]...)
	if res.StatusCode != 200 || !bytes.Equal(body, want) {
		t.Fatalf("status %d, %d bytes, want %d (5..105 then 10..end)", res.StatusCode, len(body), len(want))
	}
	if pos := s.events()["zerocopy_position"]; pos != float64(10) {
		t.Errorf("the app's file position after the sends: %v, want 10 (Go reads its own)", pos)
	}
	code, body2 := s.get("/scope")
	if code != 200 || !strings.Contains(body2, "http.response.zerocopysend") {
		t.Errorf("the scope does not list the extension: %s", body2)
	}
}

// The async state calls reach the server's shared store.
func TestAsyncState(t *testing.T) {
	s := start(t, nil, "asgi_app:app")
	code, body := s.get("/astate?key=ak")
	want := `{"got": {"v": [1, 2]}, "n": 3, "multi": [{"v": [1, 2]}, 3, null], "keys": ["ak", "ak:n"], "deleted": true, "after": null}`
	if code != 200 || body != want {
		t.Errorf("/astate: %d %s\nwant %s", code, body, want)
	}
}
