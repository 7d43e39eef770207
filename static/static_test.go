package static

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	cssBody  = "body { color: #333; }\n"
	jsBody   = "console.log('hello from app.js');\n"
	fakeBr   = "fake-brotli-bytes"
	pageBody = "<!doctype html><title>page</title>\n"
	secret   = "top secret\n"
)

func gz(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	io.WriteString(w, s)
	w.Close()
	return b.Bytes()
}

// tree builds base/static (served) and base/outside (not).
func tree(t *testing.T) (base, dir string) {
	t.Helper()
	base = t.TempDir()
	dir = filepath.Join(base, "static")
	files := map[string]string{
		"static/style.css":         cssBody,
		"static/app.js":            jsBody,
		"static/app.js.br":         fakeBr,
		"static/app.js.gz":         string(gz(jsBody)),
		"static/only-gz.txt.gz":    string(gz("only gzip\n")),
		"static/only-gz.txt":       "only gzip\n",
		"static/noext":             "<html><body>sniff me</body></html>",
		"static/blob.unknownext":   "\x00\x01\x02\x03binary",
		"static/sub/page.html":     pageBody,
		"static/sub/deeper/x.json": `{"x":1}`,
		"static/.env":              "SECRET=1\n",
		"static/.git/config":       "[core]\n",
		"static/index.html":        "index\n",
		"outside/secret.txt":       secret,
	}
	for name, body := range files {
		p := filepath.Join(base, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"static/link-inside":     "sub/page.html",
		"static/link-outside":    "../outside/secret.txt",
		"static/linkdir-outside": "../outside",
		"static/sub/up-outside":  "../../outside/secret.txt",
		"static/abs-link":        filepath.Join(dir, "style.css"),
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(base, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	return base, dir
}

// raw sends a request line and headers as is, and returns the response
// with its body read.
func raw(t *testing.T, addr, method, target string, header map[string]string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: test\r\nConnection: close\r\n")
	for k, v := range header {
		b.WriteString(k + ": " + v + "\r\n")
	}
	b.WriteString("\r\n")
	io.WriteString(c, b.String())
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

func startServer(t *testing.T, prefix, dir string) *httptest.Server {
	t.Helper()
	h, err := New(prefix, dir)
	if err != nil {
		t.Fatal(err)
	}
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "app: "+r.Method+" "+r.URL.Path)
	})
	ts := httptest.NewServer(h.Wrap(app))
	t.Cleanup(ts.Close)
	return ts
}

func TestServe(t *testing.T) {
	_, dir := tree(t)
	ts := startServer(t, "/assets", dir)
	addr := strings.TrimPrefix(ts.URL, "http://")
	const absent = "<absent>"
	cases := []struct {
		name   string
		method string
		target string
		header map[string]string
		status int
		body   string            // "" = not checked (unless status 200/206)
		want   map[string]string // response headers; absent = must not be set
	}{
		{name: "css", target: "/assets/style.css", status: 200, body: cssBody,
			want: map[string]string{"Content-Type": "text/css; charset=utf-8", "Content-Length": strconv.Itoa(len(cssBody)), "Vary": absent, "Content-Encoding": absent, "Accept-Ranges": "bytes"}},
		{name: "HEAD", method: "HEAD", target: "/assets/style.css", status: 200, body: "",
			want: map[string]string{"Content-Type": "text/css; charset=utf-8", "Content-Length": strconv.Itoa(len(cssBody))}},
		{name: "nested", target: "/assets/sub/deeper/x.json", status: 200, body: `{"x":1}`, want: map[string]string{"Content-Type": "application/json"}},
		{name: "html", target: "/assets/sub/page.html", status: 200, body: pageBody, want: map[string]string{"Content-Type": "text/html; charset=utf-8"}},
		{name: "sniffed html", target: "/assets/noext", status: 200, body: "<html><body>sniff me</body></html>", want: map[string]string{"Content-Type": "text/html; charset=utf-8"}},
		{name: "sniffed binary", target: "/assets/blob.unknownext", status: 200, body: "\x00\x01\x02\x03binary", want: map[string]string{"Content-Type": "application/octet-stream"}},
		{name: "symlink inside", target: "/assets/link-inside", status: 200, body: pageBody},
		{name: "encoded name", target: "/assets/sub/p%61ge.html", status: 200, body: pageBody},
		{name: "range", target: "/assets/style.css", header: map[string]string{"Range": "bytes=0-3"}, status: 206, body: cssBody[:4],
			want: map[string]string{"Content-Range": "bytes 0-3/" + strconv.Itoa(len(cssBody))}},
		{name: "bad range", target: "/assets/style.css", header: map[string]string{"Range": "bytes=1000-2000"}, status: 416, want: map[string]string{"Etag": absent}},

		// precompressed variants
		{name: "br preferred", target: "/assets/app.js", header: map[string]string{"Accept-Encoding": "gzip, deflate, br"}, status: 200, body: fakeBr,
			want: map[string]string{"Content-Encoding": "br", "Content-Type": "text/javascript; charset=utf-8", "Vary": "Accept-Encoding", "Content-Length": strconv.Itoa(len(fakeBr))}},
		{name: "gzip", target: "/assets/app.js", header: map[string]string{"Accept-Encoding": "gzip"}, status: 200, body: string(gz(jsBody)),
			want: map[string]string{"Content-Encoding": "gzip", "Content-Type": "text/javascript; charset=utf-8", "Vary": "Accept-Encoding"}},
		{name: "x-gzip", target: "/assets/app.js", header: map[string]string{"Accept-Encoding": "x-gzip"}, status: 200, body: string(gz(jsBody)),
			want: map[string]string{"Content-Encoding": "gzip"}},
		{name: "higher q wins", target: "/assets/app.js", header: map[string]string{"Accept-Encoding": "br;q=0.5, gzip;q=1"}, status: 200, body: string(gz(jsBody)),
			want: map[string]string{"Content-Encoding": "gzip"}},
		{name: "br refused", target: "/assets/app.js", header: map[string]string{"Accept-Encoding": "br;q=0, gzip"}, status: 200, body: string(gz(jsBody)),
			want: map[string]string{"Content-Encoding": "gzip"}},
		{name: "wildcard", target: "/assets/app.js", header: map[string]string{"Accept-Encoding": "*"}, status: 200, body: fakeBr,
			want: map[string]string{"Content-Encoding": "br"}},
		{name: "wildcard but not br", target: "/assets/app.js", header: map[string]string{"Accept-Encoding": "*, br;q=0"}, status: 200, body: string(gz(jsBody)),
			want: map[string]string{"Content-Encoding": "gzip"}},
		{name: "identity only", target: "/assets/app.js", header: map[string]string{"Accept-Encoding": "identity"}, status: 200, body: jsBody,
			want: map[string]string{"Content-Encoding": absent, "Vary": "Accept-Encoding", "Content-Type": "text/javascript; charset=utf-8"}},
		{name: "no Accept-Encoding", target: "/assets/app.js", status: 200, body: jsBody,
			want: map[string]string{"Content-Encoding": absent, "Vary": "Accept-Encoding"}},
		{name: "all refused", target: "/assets/app.js", header: map[string]string{"Accept-Encoding": "gzip;q=0, br;q=0.000"}, status: 200, body: jsBody,
			want: map[string]string{"Content-Encoding": absent}},
		{name: "only a gz variant", target: "/assets/only-gz.txt", header: map[string]string{"Accept-Encoding": "br, gzip"}, status: 200, body: string(gz("only gzip\n")),
			want: map[string]string{"Content-Encoding": "gzip", "Vary": "Accept-Encoding"}},
		{name: "no variant", target: "/assets/style.css", header: map[string]string{"Accept-Encoding": "br, gzip"}, status: 200, body: cssBody,
			want: map[string]string{"Content-Encoding": absent, "Vary": absent}},
		{name: "HEAD of a variant", method: "HEAD", target: "/assets/app.js", header: map[string]string{"Accept-Encoding": "br"}, status: 200, body: "",
			want: map[string]string{"Content-Encoding": "br", "Content-Length": strconv.Itoa(len(fakeBr))}},
		{name: "range of a variant", target: "/assets/app.js", header: map[string]string{"Accept-Encoding": "br", "Range": "bytes=5-"}, status: 206, body: fakeBr[5:],
			want: map[string]string{"Content-Encoding": "br", "Content-Length": strconv.Itoa(len(fakeBr) - 5), "Content-Range": "bytes 5-16/17"}},

		// never served
		{name: "prefix itself", target: "/assets", status: 404},
		{name: "prefix slash", target: "/assets/", status: 404},
		{name: "directory", target: "/assets/sub", status: 404},
		{name: "directory slash", target: "/assets/sub/", status: 404},
		{name: "missing", target: "/assets/missing.css", status: 404},
		{name: "trailing slash on a file", target: "/assets/style.css/", status: 404},
		{name: "dot-dot", target: "/assets/../outside/secret.txt", status: 404},
		{name: "dot-dot inside", target: "/assets/sub/../style.css", status: 404},
		{name: "encoded dot-dot", target: "/assets/%2e%2e/outside/secret.txt", status: 404},
		{name: "encoded slash", target: "/assets/sub%2Fpage.html", status: 404},
		{name: "encoded slash lower case", target: "/assets/sub%2fpage.html", status: 404},
		{name: "encoded dot-dot and slashes", target: "/assets/..%2F..%2Foutside%2Fsecret.txt", status: 404},
		{name: "encoded backslash", target: "/assets/sub%5Cpage.html", status: 404},
		{name: "NUL", target: "/assets/style.css%00", status: 404},
		{name: "dot segment", target: "/assets/./style.css", status: 404},
		{name: "empty segment", target: "/assets//style.css", status: 404},
		{name: "dotfile", target: "/assets/.env", status: 404},
		{name: "dot directory", target: "/assets/.git/config", status: 404},
		{name: "symlink outside", target: "/assets/link-outside", status: 404},
		{name: "symlink outside, up from a subdirectory", target: "/assets/sub/up-outside", status: 404},
		{name: "symlinked directory outside", target: "/assets/linkdir-outside/secret.txt", status: 404},
		{name: "absolute symlink", target: "/assets/abs-link", status: 404},
		{name: "FIFO", target: "/assets/fifo", status: 404},
		{name: "no index.html", target: "/assets/", status: 404},

		// methods
		{name: "POST", method: "POST", target: "/assets/style.css", status: 405, want: map[string]string{"Allow": "GET, HEAD"}},
		{name: "PUT", method: "PUT", target: "/assets/new.txt", status: 405, want: map[string]string{"Allow": "GET, HEAD"}},
		{name: "OPTIONS", method: "OPTIONS", target: "/assets/style.css", status: 405, want: map[string]string{"Allow": "GET, HEAD"}},
		{name: "DELETE", method: "DELETE", target: "/assets/app.js", status: 405, want: map[string]string{"Allow": "GET, HEAD"}},

		// not under the prefix: the app
		{name: "other path", target: "/other", status: 200, body: "app: GET /other"},
		{name: "prefix-like path", target: "/assetsx/style.css", status: 200, body: "app: GET /assetsx/style.css"},
		{name: "POST elsewhere", method: "POST", target: "/api", status: 200, body: "app: POST /api"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			method := c.method
			if method == "" {
				method = "GET"
			}
			start := time.Now()
			resp, body := raw(t, addr, method, c.target, c.header)
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v", d)
			}
			if resp.StatusCode != c.status {
				t.Fatalf("%s %s: status %d, want %d (body %q)", method, c.target, resp.StatusCode, c.status, body)
			}
			if c.body != "" || c.status == 200 || c.status == 206 {
				if body != c.body {
					t.Fatalf("body %q, want %q", body, c.body)
				}
			}
			if c.status == 404 && (strings.Contains(body, "secret") || strings.Contains(body, "SECRET")) {
				t.Fatalf("404 leaks: %q", body)
			}
			for k, v := range c.want {
				got, ok := resp.Header[http.CanonicalHeaderKey(k)]
				if v == absent {
					if ok {
						t.Errorf("header %s = %q, want none", k, got)
					}
					continue
				}
				if strings.Join(got, ", ") != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if c.status == 200 || c.status == 206 {
				if strings.HasPrefix(c.target, "/assets/") {
					et := resp.Header.Get("Etag")
					if !strings.HasPrefix(et, `"`) || !strings.HasSuffix(et, `"`) || len(et) < 5 {
						t.Errorf("ETag %q is not a strong entity tag", et)
					}
					if enc := resp.Header.Get("Content-Encoding"); enc != "" && !strings.HasSuffix(et, "-"+enc+`"`) {
						t.Errorf("ETag %q is not the %s variant's", et, enc)
					}
					if resp.Header.Get("Last-Modified") == "" {
						t.Error("no Last-Modified")
					}
				}
			}
		})
	}
}

// TestConditional: If-None-Match, If-Modified-Since, If-Range, If-Match,
// each variant with its own ETag.
func TestConditional(t *testing.T) {
	_, dir := tree(t)
	ts := startServer(t, "/static/", dir)
	addr := strings.TrimPrefix(ts.URL, "http://")
	r0, _ := raw(t, addr, "GET", "/static/app.js", nil)
	rBr, _ := raw(t, addr, "GET", "/static/app.js", map[string]string{"Accept-Encoding": "br"})
	rGz, _ := raw(t, addr, "GET", "/static/app.js", map[string]string{"Accept-Encoding": "gzip"})
	etag, etagBr, etagGz := r0.Header.Get("Etag"), rBr.Header.Get("Etag"), rGz.Header.Get("Etag")
	lastMod := r0.Header.Get("Last-Modified")
	if etag == "" || etag == etagBr || etag == etagGz || etagBr == etagGz {
		t.Fatalf("ETags identity %q br %q gzip %q: want three different ones", etag, etagBr, etagGz)
	}
	past := time.Now().Add(-48 * time.Hour).UTC().Format(http.TimeFormat)
	cases := []struct {
		name   string
		header map[string]string
		status int
		body   string
	}{
		{"If-None-Match match", map[string]string{"If-None-Match": etag}, 304, ""},
		{"If-None-Match in a list", map[string]string{"If-None-Match": `"nope", ` + etag}, 304, ""},
		{"If-None-Match star", map[string]string{"If-None-Match": "*"}, 304, ""},
		{"If-None-Match weak form matches weakly", map[string]string{"If-None-Match": "W/" + etag}, 304, ""},
		{"If-None-Match other", map[string]string{"If-None-Match": `"other"`}, 200, jsBody},
		{"If-None-Match of the br variant, identity asked", map[string]string{"If-None-Match": etagBr}, 200, jsBody},
		{"If-None-Match of the br variant, br asked", map[string]string{"If-None-Match": etagBr, "Accept-Encoding": "br"}, 304, ""},
		{"If-None-Match identity, br asked", map[string]string{"If-None-Match": etag, "Accept-Encoding": "br"}, 200, fakeBr},
		{"If-Modified-Since now", map[string]string{"If-Modified-Since": lastMod}, 304, ""},
		{"If-Modified-Since past", map[string]string{"If-Modified-Since": past}, 200, jsBody},
		{"If-Range match", map[string]string{"Range": "bytes=0-6", "If-Range": etag}, 206, jsBody[:7]},
		{"If-Range stale", map[string]string{"Range": "bytes=0-6", "If-Range": `"stale"`}, 200, jsBody},
		{"If-Match mismatch", map[string]string{"If-Match": `"other"`}, 412, ""},
		{"If-Match match", map[string]string{"If-Match": etag}, 200, jsBody},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := raw(t, addr, "GET", "/static/app.js", c.header)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.status)
			}
			if c.body != "" && body != c.body {
				t.Fatalf("body %q, want %q", body, c.body)
			}
			if c.status == 304 {
				if body != "" || resp.Header.Get("Etag") == "" {
					t.Fatalf("304 with body %q, ETag %q", body, resp.Header.Get("Etag"))
				}
			}
		})
	}
}

// TestETagChanges: the ETag follows the file's size, mtime and inode.
func TestETagChanges(t *testing.T) {
	_, dir := tree(t)
	ts := startServer(t, "/s", dir)
	addr := strings.TrimPrefix(ts.URL, "http://")
	p := filepath.Join(dir, "style.css")
	etagNow := func() string {
		r, _ := raw(t, addr, "GET", "/s/style.css", nil)
		return r.Header.Get("Etag")
	}
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	os.Chtimes(p, mtime, mtime)
	e1 := etagNow()
	if e1 != etagNow() {
		t.Fatal("the ETag of an unchanged file changed")
	}
	// same size, other mtime
	os.Chtimes(p, mtime.Add(time.Second), mtime.Add(time.Second))
	e2 := etagNow()
	// same size and mtime, other inode (a new file renamed over it)
	tmp := filepath.Join(dir, "style.css.new")
	os.WriteFile(tmp, []byte(cssBody), 0o644)
	os.Chtimes(tmp, mtime.Add(time.Second), mtime.Add(time.Second))
	os.Rename(tmp, p)
	e3 := etagNow()
	// other size
	os.WriteFile(p, []byte(cssBody+"x"), 0o644)
	os.Chtimes(p, mtime.Add(time.Second), mtime.Add(time.Second))
	e4 := etagNow()
	seen := map[string]bool{}
	for _, e := range []string{e1, e2, e3, e4} {
		if e == "" || seen[e] {
			t.Fatalf("ETags %q %q %q %q: want four different ones", e1, e2, e3, e4)
		}
		seen[e] = true
	}
}

// TestLargeVariant: a variant too big for net/http's buffer still goes
// out with its Content-Length, not chunked.
func TestLargeVariant(t *testing.T) {
	_, dir := tree(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	os.WriteFile(filepath.Join(dir, "big.js"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "big.js.br"), big, 0o644)
	ts := startServer(t, "/assets", dir)
	addr := strings.TrimPrefix(ts.URL, "http://")
	resp, body := raw(t, addr, "GET", "/assets/big.js", map[string]string{"Accept-Encoding": "br"})
	if resp.StatusCode != 200 || len(resp.TransferEncoding) != 0 || resp.ContentLength != int64(len(big)) || body != string(big) {
		t.Fatalf("status %d, transfer-encoding %q, content-length %d, body %d bytes", resp.StatusCode, resp.TransferEncoding, resp.ContentLength, len(body))
	}
	et := resp.Header.Get("Etag")
	resp, body = raw(t, addr, "GET", "/assets/big.js", map[string]string{"Accept-Encoding": "br", "If-None-Match": et})
	if resp.StatusCode != 304 || body != "" || resp.Header.Get("Content-Length") != "" {
		t.Fatalf("304: status %d, Content-Length %q, body %d bytes", resp.StatusCode, resp.Header.Get("Content-Length"), len(body))
	}
}

// TestGoClientDecompresses: Go's client asks for gzip by itself and gets
// the original bytes back from the .gz variant.
func TestGoClientDecompresses(t *testing.T) {
	_, dir := tree(t)
	ts := startServer(t, "/assets", dir)
	resp, err := http.Get(ts.URL + "/assets/app.js")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !resp.Uncompressed || string(body) != jsBody {
		t.Fatalf("uncompressed %v, body %q", resp.Uncompressed, body)
	}
}

// TestDirectoryReplaced: the directory is opened per request, so swapping
// a symlinked release serves the new files at once.
func TestDirectoryReplaced(t *testing.T) {
	base := t.TempDir()
	for _, rel := range []string{"r1", "r2"} {
		os.MkdirAll(filepath.Join(base, rel), 0o755)
		os.WriteFile(filepath.Join(base, rel, "v.txt"), []byte(rel), 0o644)
	}
	current := filepath.Join(base, "current")
	os.Symlink("r1", current)
	ts := startServer(t, "/s", current)
	addr := strings.TrimPrefix(ts.URL, "http://")
	if _, body := raw(t, addr, "GET", "/s/v.txt", nil); body != "r1" {
		t.Fatalf("got %q", body)
	}
	os.Symlink("r2", current+".tmp")
	os.Rename(current+".tmp", current)
	if _, body := raw(t, addr, "GET", "/s/v.txt", nil); body != "r2" {
		t.Fatalf("after the swap got %q, want r2", body)
	}
}

func TestRootPrefix(t *testing.T) {
	_, dir := tree(t)
	ts := startServer(t, "/", dir)
	addr := strings.TrimPrefix(ts.URL, "http://")
	if r, body := raw(t, addr, "GET", "/style.css", nil); r.StatusCode != 200 || body != cssBody {
		t.Fatalf("%d %q", r.StatusCode, body)
	}
	if r, _ := raw(t, addr, "GET", "/", nil); r.StatusCode != 404 {
		t.Fatalf("/: %d", r.StatusCode)
	}
	if r, _ := raw(t, addr, "GET", "/../outside/secret.txt", nil); r.StatusCode != 404 {
		t.Fatalf("..: %d", r.StatusCode)
	}
}

func TestMatch(t *testing.T) {
	cases := []struct {
		prefix string
		path   string
		want   bool
	}{
		{"/assets", "/assets/a.css", true},
		{"/assets", "/assets", true},
		{"/assets", "/assets/", true},
		{"/assets/", "/assets/a.css", true},
		{"/assets", "/assetsx", false},
		{"/assets", "/asset", false},
		{"/assets", "/", false},
		{"/assets", "/other/assets/a.css", false},
		{"/a/b", "/a/b/c", true},
		{"/a/b", "/a/c", false},
		{"/", "/anything", true},
	}
	dir := t.TempDir()
	for _, c := range cases {
		h, err := New(c.prefix, dir)
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("GET", c.path, nil)
		if got := h.Match(r); got != c.want {
			t.Errorf("New(%q).Match(%q) = %v, want %v", c.prefix, c.path, got, c.want)
		}
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	os.WriteFile(file, nil, 0o644)
	cases := []struct{ prefix, dir, want string }{
		{"assets", dir, "must start with '/'"},
		{"", dir, "must start with '/'"},
		{"/a/../b", dir, "not a clean path"},
		{"//a", dir, "not a clean path"},
		{"/a/./b", dir, "not a clean path"},
		{"/a", filepath.Join(dir, "missing"), "no such file"},
		{"/a", file, "not a directory"},
	}
	for _, c := range cases {
		if _, err := New(c.prefix, c.dir); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%q, %q) error = %v, want %q", c.prefix, c.dir, err, c.want)
		}
	}
	h, err := New("/a/", ".")
	if err != nil || h.Prefix() != "/a" || !filepath.IsAbs(h.Dir()) {
		t.Fatalf("New(/a/, .) = %v %v", h, err)
	}
}

func TestParseMapping(t *testing.T) {
	cases := []struct {
		in, prefix, dir string
		err             bool
	}{
		{in: "/assets=./static", prefix: "/assets", dir: "./static"},
		{in: "/=/srv/www", prefix: "/", dir: "/srv/www"},
		{in: " /a = dir ", prefix: "/a", dir: "dir"},
		{in: "/a=dir=x", prefix: "/a", dir: "dir=x"},
		{in: "/assets", err: true},
		{in: "=dir", err: true},
		{in: "/a=", err: true},
		{in: "assets=./static", err: true},
		{in: "", err: true},
	}
	for _, c := range cases {
		p, d, err := ParseMapping(c.in)
		if c.err {
			if err == nil {
				t.Errorf("ParseMapping(%q) = %q %q, want an error", c.in, p, d)
			}
			continue
		}
		if err != nil || p != c.prefix || d != c.dir {
			t.Errorf("ParseMapping(%q) = %q %q %v, want %q %q", c.in, p, d, err, c.prefix, c.dir)
		}
	}
}

func TestAcceptedEncodings(t *testing.T) {
	cases := []struct {
		in     string
		br, gz float64
	}{
		{"", 0, 0},
		{"gzip", 0, 1},
		{"br", 1, 0},
		{"gzip, deflate, br, zstd", 1, 1},
		{"br;q=0.8, gzip;q=0.9", 0.8, 0.9},
		{"BR;Q=0.5", 0.5, 0},
		{"*", 1, 1},
		{"*;q=0.3, br", 1, 0.3},
		{"br;q=0", 0, 0},
		{"br;q=abc", 0, 0},
		{"br;q=2", 0, 0},
		{"identity", 0, 0},
		{"x-gzip;q=0.4", 0, 0.4},
	}
	for _, c := range cases {
		br, gz := acceptedEncodings([]string{c.in})
		if br != c.br || gz != c.gz {
			t.Errorf("acceptedEncodings(%q) = %v %v, want %v %v", c.in, br, gz, c.br, c.gz)
		}
	}
}
