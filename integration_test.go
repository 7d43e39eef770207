package hornbeam_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hornbeam-go/hornbeam"
)

// The proxy, access log, request id and static file layers, through a real
// server.

func TestForwardedFromTrustedProxy(t *testing.T) {
	// 127.0.0.1 is trusted by default; the host is taken from a forwarding
	// header only with --forwarded-host.
	s := start(t, "echo", hornbeam.Options{Workers: 1, ForwardedHost: true})
	req, _ := http.NewRequest("GET", s.URL+"/", nil)
	req.Header.Set("X-Forwarded-For", "10.0.0.1, 203.0.113.7") // the right-most untrusted entry is the client
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("X-Forwarded-Host", "example.org")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	env := echoEnviron(t, resp)
	if env["REMOTE_ADDR"] != "203.0.113.7" || env["wsgi.url_scheme"] != "https" || env["HTTP_HOST"] != "example.org" {
		t.Errorf("from a trusted proxy: REMOTE_ADDR %v, scheme %v, host %v", env["REMOTE_ADDR"], env["wsgi.url_scheme"], env["HTTP_HOST"])
	}

	req, _ = http.NewRequest("GET", s.URL+"/", nil)
	req.Header.Set("Forwarded", `for="[2001:db8::1]:4711";proto=https;host=rfc.example`)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	env = echoEnviron(t, resp)
	if env["REMOTE_ADDR"] != "2001:db8::1" || env["REMOTE_PORT"] != "4711" || env["wsgi.url_scheme"] != "https" || env["HTTP_HOST"] != "rfc.example" {
		t.Errorf("RFC 7239 Forwarded: %v %v %v %v", env["REMOTE_ADDR"], env["REMOTE_PORT"], env["wsgi.url_scheme"], env["HTTP_HOST"])
	}
}

func TestForwardedFromUntrustedPeer(t *testing.T) {
	s := start(t, "echo", hornbeam.Options{Workers: 1, ForwardedAllowIPs: []string{"10.9.9.9"}})
	req, _ := http.NewRequest("GET", s.URL+"/", nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	req.Header.Set("X-Forwarded-Proto", "https")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	env := echoEnviron(t, resp)
	if env["REMOTE_ADDR"] != "127.0.0.1" || env["wsgi.url_scheme"] != "http" {
		t.Errorf("an untrusted peer changed REMOTE_ADDR %v / scheme %v", env["REMOTE_ADDR"], env["wsgi.url_scheme"])
	}
	if env["HTTP_X_FORWARDED_FOR"] != "203.0.113.7" {
		t.Errorf("the header must pass through untouched, got %v", env["HTTP_X_FORWARDED_FOR"])
	}
}

func TestProxyProtocol(t *testing.T) {
	s := start(t, "echo", hornbeam.Options{Workers: 1, ProxyProtocol: true})
	out := rawRequest(t, hostOf(s), "PROXY TCP4 198.51.100.9 10.0.0.1 5555 80\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	i := strings.Index(out, "\r\n\r\n")
	if !strings.HasPrefix(out, "HTTP/1.1 200") || i < 0 {
		t.Fatalf("PROXY v1 request: %q", out)
	}
	var env map[string]any
	json.Unmarshal([]byte(out[i+4:]), &env)
	if env["REMOTE_ADDR"] != "198.51.100.9" || env["REMOTE_PORT"] != "5555" {
		t.Errorf("REMOTE_ADDR %v:%v, want the client from the PROXY header", env["REMOTE_ADDR"], env["REMOTE_PORT"])
	}
}

func TestAccessLogAndRequestID(t *testing.T) {
	logs := &syncBuffer{}
	s := start(t, "echo", hornbeam.Options{Workers: 1, AccessLog: logs, AccessLogFormat: `%(h)s "%(r)s" %(s)s %(b)s %({x-request-id}i)s %(D)s`})
	req, _ := http.NewRequest("GET", s.URL+"/logged?x=1", nil)
	req.Header.Set("X-Request-Id", "abc-123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("X-Request-Id") != "abc-123" {
		t.Errorf("response X-Request-Id %q", resp.Header.Get("X-Request-Id"))
	}
	env := echoEnviron(t, resp)
	if env["HTTP_X_REQUEST_ID"] != "abc-123" {
		t.Errorf("the app saw HTTP_X_REQUEST_ID %v", env["HTTP_X_REQUEST_ID"])
	}
	// Without one, an id is generated and passed on.
	resp, _ = http.Get(s.URL + "/fresh")
	env = echoEnviron(t, resp)
	gen, _ := env["HTTP_X_REQUEST_ID"].(string)
	if len(gen) < 16 || resp.Header.Get("X-Request-Id") != gen {
		t.Errorf("generated id %q, response header %q", gen, resp.Header.Get("X-Request-Id"))
	}
	re := regexp.MustCompile(`^127\.0\.0\.1 "GET /logged\?x=1 HTTP/1\.1" 200 \d+ abc-123 \d+$`)
	waitFor(t, 2e9, "the access log line", func() bool {
		for _, l := range strings.Split(logs.String(), "\n") {
			if re.MatchString(l) {
				return true
			}
		}
		return false
	})
}

func TestAccessLogJSON(t *testing.T) {
	logs := &syncBuffer{}
	s := start(t, "echo", hornbeam.Options{Workers: 1, AccessLog: logs, AccessLogJSON: true})
	get(t, s.URL+"/j")
	waitFor(t, 2e9, "a JSON access log line", func() bool { return strings.Contains(logs.String(), "\n") })
	var line map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(logs.String(), "\n", 2)[0]), &line); err != nil {
		t.Fatalf("not JSON: %q", logs.String())
	}
	if line["path"] != "/j" || line["status"] != float64(200) || line["duration_ms"] == nil || line["request_id"] == "" {
		t.Errorf("JSON access log line: %v", line)
	}
}

func TestStaticFiles(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "app.css"), []byte("body{}"), 0o644)
	s := start(t, "hostile_count", hornbeam.Options{Workers: 1, Static: []string{"/assets=" + dir}})
	resp, err := http.Get(s.URL + "/assets/app.css")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "body{}" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") || resp.Header.Get("ETag") == "" {
		t.Errorf("static: %d %q %v", resp.StatusCode, b, resp.Header)
	}
	req, _ := http.NewRequest("GET", s.URL+"/assets/app.css", nil)
	req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != 304 {
		t.Errorf("If-None-Match: %d", resp2.StatusCode)
	}
	if code, _ := get(t, s.URL+"/assets/../secret"); code != 404 && code != 400 {
		t.Errorf("traversal: %d", code)
	}
	// None of that reached a worker; the app itself still does.
	if v, _, _ := s.StateGet("calls"); v != nil {
		t.Errorf("static requests reached the app: %v calls", v)
	}
	get(t, s.URL+"/app")
	if v, _, _ := s.StateGet("calls"); fmt.Sprint(v) != "1" {
		t.Errorf("app calls %v, want 1", v)
	}
}

// A bad setting is reported before any worker imports the app.
func TestBadSettingsBeforeWorkers(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "imported")
	t.Setenv("HB_IMPORT_MARKER", marker)
	for _, opts := range []hornbeam.Options{
		{Static: []string{"no-equals-sign"}},
		{AccessLog: io.Discard, AccessLogFormat: "%(nope)s"},
		{CertFile: "/nonexistent/cert.pem", KeyFile: "/nonexistent/key.pem"},
	} {
		opts.Bind, opts.Python, opts.PythonPath, opts.Workers, opts.ErrorLog = []string{"127.0.0.1:0"}, python, []string{appsDir(t)}, 1, io.Discard
		if _, err := hornbeam.Start(t.Context(), "marks_import", opts); err == nil {
			t.Fatalf("%+v: started", opts)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Fatalf("%+v: the app was imported before the bad setting was reported", opts)
		}
	}
}
