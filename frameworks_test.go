package hornbeam_test

// End-to-end tests of the seed applications in examples/ (and of a Django
// project made with django-admin): a real server from hornbeam.Start, real
// Python workers running the real frameworks, real HTTP over loopback.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hornbeam-go/hornbeam"
)

// examplesDir is examples/, holding the seed applications.
func examplesDir(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "examples")
}

// startExample serves examples/MODULE.py's application.
func startExample(t *testing.T, module string, opts hornbeam.Options) *testServer {
	t.Helper()
	if len(opts.PythonPath) == 0 {
		opts.PythonPath = []string{examplesDir(t)}
	}
	return start(t, module+":application", opts)
}

// needPythonModule skips the test when Debian's Python lacks a framework.
func needPythonModule(t *testing.T, module string) {
	t.Helper()
	if _, err := os.Stat(python); err != nil {
		t.Skip("Debian's /usr/bin/python3 is not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, python, "-c", "import "+module).CombinedOutput(); err != nil {
		t.Skipf("%s cannot import %s (install python3-%s): %v\n%s", python, module, module, err, out)
	}
}

// newClient is an HTTP client of its own, so connections do not outlive the
// test: they are closed when it ends.
func newClient(t *testing.T) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// do sends req and returns the response with its whole body read.
func do(t *testing.T, c *http.Client, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL, err)
	}
	return resp, b
}

func newRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// expect checks a response's status and headers; want maps a header name to
// a prefix of its value.
func expect(t *testing.T, resp *http.Response, body []byte, status int, want map[string]string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d; body:\n%s", resp.Request.Method, resp.Request.URL, resp.StatusCode, status, body)
	}
	for name, prefix := range want {
		if got := resp.Header.Get(name); !strings.HasPrefix(got, prefix) {
			t.Errorf("%s %s: header %s = %q, want it to start with %q", resp.Request.Method, resp.Request.URL, name, got, prefix)
		}
	}
}

func decodeJSON(t *testing.T, body []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("response is not JSON: %v; body:\n%s", err, body)
	}
}

// randomBytes returns n random bytes and their hex SHA-256.
func randomBytes(t *testing.T, n int) ([]byte, string) {
	b := make([]byte, n)
	rand.Read(b)
	sum := sha256.Sum256(b)
	return b, hex.EncodeToString(sum[:])
}

// rawExchange sends a raw request on a new TCP connection and returns all
// that the server sends back until it closes the connection.
func rawExchange(t *testing.T, s *testServer, request string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.Addrs()[0].String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the raw response: %v (so far: %q)", err, b)
	}
	return string(b)
}

// waitLog waits for the server's error log to match re and returns the match.
func waitLog(t *testing.T, s *testServer, re *regexp.Regexp) string {
	t.Helper()
	var m string
	waitFor(t, 10*time.Second, "the error log to match "+re.String(), func() bool {
		m = re.FindString(s.Log.String())
		return m != ""
	})
	return m
}

// TestExampleDocstrings checks that every example says how to run it.
func TestExampleDocstrings(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(examplesDir(t), "*.py"))
	if err != nil || len(files) < 9 {
		t.Fatalf("examples: %v, %v", files, err)
	}
	for _, f := range files {
		module := strings.TrimSuffix(filepath.Base(f), ".py")
		if module == "hello" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src := string(b)
		if !strings.HasPrefix(src, `"""`) {
			t.Errorf("%s: does not start with a docstring", f)
		}
		// A WSGI example is module:application; an ASGI one (asgi_*) is
		// run with -k asgi and names its own callable.
		run := "hornbeam --python /usr/bin/python3 --pythonpath examples " + module + ":application"
		if strings.HasPrefix(module, "asgi_") {
			run = "hornbeam -k asgi --python /usr/bin/python3 --pythonpath examples " + module + ":"
		}
		if !strings.Contains(src, run) {
			t.Errorf("%s: the docstring does not say how to run it (%q)", f, run)
		}
	}
}

// TestExampleEnviron checks the environ a WSGI app sees (PEP 3333), through
// examples/environ_app.py in both its text and JSON forms.
func TestExampleEnviron(t *testing.T) {
	s := startExample(t, "environ_app", hornbeam.Options{})
	c := newClient(t)

	t.Run("text", func(t *testing.T) {
		req := newRequest(t, "GET", s.URL+"/some/path?a=1&b=two", nil)
		req.Header.Set("X-Custom", "hello there")
		resp, body := do(t, c, req)
		expect(t, resp, body, 200, map[string]string{"Content-Type": "text/plain; charset=utf-8"})
		if resp.ContentLength != int64(len(body)) {
			t.Errorf("Content-Length %d, body %d bytes", resp.ContentLength, len(body))
		}
		lines := strings.Split(string(body), "\n")
		for _, want := range []string{
			"REQUEST_METHOD: GET",
			"PATH_INFO: /some/path",
			"QUERY_STRING: a=1&b=two",
			"HTTP_X_CUSTOM: hello there",
			"SCRIPT_NAME: ",
			"SERVER_PROTOCOL: HTTP/1.1",
			"wsgi.url_scheme: http",
			"wsgi.version: [1, 0]",
			"REMOTE_ADDR: 127.0.0.1",
			"body_length: 0",
		} {
			found := false
			for _, l := range lines {
				found = found || l == want
			}
			if !found {
				t.Errorf("no line %q in:\n%s", want, body)
			}
		}
	})

	type env map[string]any
	for _, tc := range []struct {
		name, method, path string
		header             map[string]string
		body               string
		want               env
		absent             []string
	}{
		{
			name: "get", method: "GET", path: "/?format=json&x=%2F",
			header: map[string]string{"X-Custom": "v1", "Accept-Language": "fr"},
			want: env{
				"REQUEST_METHOD": "GET", "PATH_INFO": "/", "QUERY_STRING": "format=json&x=%2F",
				"HTTP_X_CUSTOM": "v1", "HTTP_ACCEPT_LANGUAGE": "fr", "body_length": 0.0,
				"wsgi.multiprocess": true, "wsgi.run_once": false,
			},
			absent: []string{"CONTENT_LENGTH", "CONTENT_TYPE"},
		},
		{
			name: "post", method: "POST", path: "/submit?format=json",
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded", "X-Custom": "v2"},
			body:   "a=1&b=2",
			want: env{
				"REQUEST_METHOD": "POST", "PATH_INFO": "/submit", "CONTENT_TYPE": "application/x-www-form-urlencoded",
				"CONTENT_LENGTH": "7", "HTTP_X_CUSTOM": "v2", "body_length": 7.0,
			},
		},
		{
			name: "accept json, escaped path", method: "PUT", path: "/a%20b/c%3Fd",
			header: map[string]string{"Accept": "application/json"},
			want:   env{"REQUEST_METHOD": "PUT", "PATH_INFO": "/a b/c?d", "QUERY_STRING": ""},
		},
		{
			name: "underscore header dropped", method: "GET", path: "/?format=json",
			header: map[string]string{"X-Forwarded_For": "1.2.3.4", "X-Real-Ip": "5.6.7.8"},
			want:   env{"HTTP_X_REAL_IP": "5.6.7.8"},
			absent: []string{"HTTP_X_FORWARDED_FOR"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req := newRequest(t, tc.method, s.URL+tc.path, body)
			for k, v := range tc.header {
				req.Header[k] = []string{v} // as given: X-Forwarded_For is not canonical
			}
			resp, b := do(t, c, req)
			expect(t, resp, b, 200, map[string]string{"Content-Type": "application/json"})
			var got env
			decodeJSON(t, b, &got)
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("environ[%q] = %#v, want %#v", k, got[k], v)
				}
			}
			for _, k := range tc.absent {
				if v, ok := got[k]; ok {
					t.Errorf("environ[%q] = %#v, want it absent", k, v)
				}
			}
		})
	}

	t.Run("non-ASCII path is a latin-1 native string", func(t *testing.T) {
		resp, b := do(t, c, newRequest(t, "GET", s.URL+"/caf%C3%A9?format=json", nil))
		expect(t, resp, b, 200, nil)
		var got map[string]any
		decodeJSON(t, b, &got)
		p, _ := got["PATH_INFO"].(string)
		raw := make([]byte, 0, len(p))
		for _, r := range p {
			if r > 0xFF {
				t.Fatalf("PATH_INFO %q has a code point above U+00FF", p)
			}
			raw = append(raw, byte(r))
		}
		if string(raw) != "/café" {
			t.Errorf("PATH_INFO %q encodes to %q as latin-1, want the UTF-8 bytes of /café", p, raw)
		}
	})
}

// TestFrameworkFlask serves examples/flask_app.py.
func TestFrameworkFlask(t *testing.T) {
	needPythonModule(t, "flask")
	s := startExample(t, "flask_app", hornbeam.Options{})
	c := newClient(t)

	t.Run("index", func(t *testing.T) {
		resp, b := do(t, c, newRequest(t, "GET", s.URL+"/", nil))
		expect(t, resp, b, 200, map[string]string{"Content-Type": "text/plain; charset=utf-8"})
		if string(b) != "Hello from Flask!" {
			t.Errorf("body %q", b)
		}
	})

	t.Run("hello/<name>", func(t *testing.T) {
		for name, want := range map[string]string{
			"world":                 "Hello, world!",
			"J%C3%BCrgen":           "Hello, Jürgen!",
			"%3Cb%3Ebold%3C%5Cb%3E": "Hello, &lt;b&gt;bold&lt;\\b&gt;!",
		} {
			resp, b := do(t, c, newRequest(t, "GET", s.URL+"/hello/"+name, nil))
			expect(t, resp, b, 200, map[string]string{"Content-Type": "text/html; charset=utf-8"})
			if string(b) != want {
				t.Errorf("/hello/%s: body %q, want %q", name, b, want)
			}
		}
	})

	type item struct {
		ID    int     `json:"id"`
		Name  string  `json:"name"`
		Price float64 `json:"price"`
	}

	t.Run("GET /api/items", func(t *testing.T) {
		resp, b := do(t, c, newRequest(t, "GET", s.URL+"/api/items", nil))
		expect(t, resp, b, 200, map[string]string{"Content-Type": "application/json"})
		var items []item
		decodeJSON(t, b, &items)
		if len(items) < 2 || items[0] != (item{1, "hammer", 12.5}) || items[1] != (item{2, "saw", 20}) {
			t.Errorf("items %+v", items)
		}
	})

	t.Run("POST /api/items", func(t *testing.T) {
		req := newRequest(t, "POST", s.URL+"/api/items", strings.NewReader(`{"name": "chisel", "price": 7.25}`))
		req.Header.Set("Content-Type", "application/json")
		resp, b := do(t, c, req)
		expect(t, resp, b, 201, map[string]string{"Content-Type": "application/json"})
		var got item
		decodeJSON(t, b, &got)
		if got.Name != "chisel" || got.Price != 7.25 || got.ID < 3 {
			t.Errorf("created %+v", got)
		}
		if loc := resp.Header.Get("Location"); !strings.HasSuffix(loc, "/api/items/"+strconv.Itoa(got.ID)) {
			t.Errorf("Location %q for item %d", loc, got.ID)
		}
	})

	t.Run("POST /api/items bad JSON", func(t *testing.T) {
		for _, body := range []string{`{"price": 1}`, `not json`, `[1, 2]`} {
			req := newRequest(t, "POST", s.URL+"/api/items", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, b := do(t, c, req)
			expect(t, resp, b, 400, map[string]string{"Content-Type": "application/json"})
			contains(t, string(b), `"name\" string`, "error for "+body)
		}
	})

	t.Run("405 and 404", func(t *testing.T) {
		resp, b := do(t, c, newRequest(t, "DELETE", s.URL+"/api/items", nil))
		expect(t, resp, b, 405, nil)
		if allow := resp.Header.Get("Allow"); !strings.Contains(allow, "POST") || !strings.Contains(allow, "GET") {
			t.Errorf("405 Allow: %q", allow)
		}
		resp, b = do(t, c, newRequest(t, "GET", s.URL+"/no/such/page", nil))
		expect(t, resp, b, 404, map[string]string{"Content-Type": "text/html"})
		contains(t, string(b), "Not Found", "404 body")
	})

	t.Run("Jinja template", func(t *testing.T) {
		resp, b := do(t, c, newRequest(t, "GET", s.URL+"/page/Ada%20%3Cscript%3E", nil))
		expect(t, resp, b, 200, map[string]string{"Content-Type": "text/html; charset=utf-8"})
		body := string(b)
		contains(t, body, "<title>Hello Ada &lt;script&gt;</title>", "rendered page")
		contains(t, body, "<h1>Hello, Ada &lt;script&gt;!</h1>", "rendered page")
		contains(t, body, "<li>hammer: 12.50</li>", "rendered page")
		contains(t, body, "<li>saw: 20.00</li>", "rendered page")
		if strings.Contains(body, "<script>") || strings.Contains(body, "{{") {
			t.Errorf("template not rendered or not escaped:\n%s", body)
		}
	})
}

// djangoProject makes a Django project in a temporary directory, as a user
// would: django-admin startproject, two views, migrate, a superuser.
func djangoProject(t *testing.T) string {
	t.Helper()
	needPythonModule(t, "django")
	admin := "/usr/bin/django-admin"
	if _, err := os.Stat(admin); err != nil {
		t.Skip("/usr/bin/django-admin is not installed (python3-django)")
	}
	dir := filepath.Join(t.TempDir(), "site")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	run := func(env []string, name string, args ...string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	run(nil, admin, "startproject", "myproject", dir)

	appendTo := func(name, text string) {
		f, err := os.OpenFile(filepath.Join(dir, "myproject", name), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(text); err != nil {
			t.Fatal(err)
		}
	}
	appendTo("settings.py", "\nALLOWED_HOSTS = ['*']\n")
	appendTo("urls.py", `

from django.http import HttpResponse, JsonResponse


def hello(request):
    return HttpResponse("Hello from Django!", content_type="text/plain; charset=utf-8")


def api_info(request):
    return JsonResponse({
        "framework": "django",
        "method": request.method,
        "path": request.path,
        "q": request.GET.get("q"),
        "user_agent": request.headers.get("User-Agent"),
    })


urlpatterns += [
    path("hello/", hello),
    path("api/info/", api_info),
]
`)
	run(nil, python, "manage.py", "migrate", "--noinput")
	run([]string{"DJANGO_SUPERUSER_PASSWORD=correct-horse-battery"}, python, "manage.py",
		"createsuperuser", "--noinput", "--username", "admin", "--email", "admin@example.com")
	return dir
}

// TestFrameworkDjango serves a project made by django-admin startproject.
func TestFrameworkDjango(t *testing.T) {
	dir := djangoProject(t)
	s := start(t, "myproject.wsgi:application", hornbeam.Options{PythonPath: []string{dir}})
	c := newClient(t)

	t.Run("hello view", func(t *testing.T) {
		resp, b := do(t, c, newRequest(t, "GET", s.URL+"/hello/", nil))
		expect(t, resp, b, 200, map[string]string{"Content-Type": "text/plain; charset=utf-8"})
		if string(b) != "Hello from Django!" {
			t.Errorf("body %q", b)
		}
	})

	t.Run("slash redirect", func(t *testing.T) {
		nr := &http.Client{Transport: c.Transport, Timeout: c.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, b := do(t, nr, newRequest(t, "GET", s.URL+"/hello", nil))
		expect(t, resp, b, 301, map[string]string{"Location": "/hello/"})
	})

	t.Run("JSON view", func(t *testing.T) {
		req := newRequest(t, "GET", s.URL+"/api/info/?q=caf%C3%A9", nil)
		req.Header.Set("User-Agent", "hornbeam-test/1.0")
		resp, b := do(t, c, req)
		expect(t, resp, b, 200, map[string]string{"Content-Type": "application/json"})
		var got map[string]any
		decodeJSON(t, b, &got)
		want := map[string]any{"framework": "django", "method": "GET", "path": "/api/info/", "q": "café", "user_agent": "hornbeam-test/1.0"}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s = %#v, want %#v (all: %s)", k, got[k], v, b)
			}
		}
	})

	t.Run("404", func(t *testing.T) {
		resp, b := do(t, c, newRequest(t, "GET", s.URL+"/no-such-page/", nil))
		expect(t, resp, b, 404, map[string]string{"Content-Type": "text/html"})
	})

	t.Run("admin login page", func(t *testing.T) {
		resp, b := do(t, c, newRequest(t, "GET", s.URL+"/admin/login/", nil))
		expect(t, resp, b, 200, map[string]string{"Content-Type": "text/html; charset=utf-8"})
		contains(t, string(b), "Django", "admin login page")
		contains(t, string(b), `name="csrfmiddlewaretoken"`, "admin login page")
	})

	t.Run("admin login", func(t *testing.T) {
		// Cookies, a CSRF-protected form POST, a redirect and a session
		// stored in the SQLite database by whichever worker gets the request.
		jar, _ := cookiejar.New(nil)
		ac := &http.Client{Transport: c.Transport, Timeout: c.Timeout, Jar: jar,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, b := do(t, ac, newRequest(t, "GET", s.URL+"/admin/", nil))
		expect(t, resp, b, 302, map[string]string{"Location": "/admin/login/?next=/admin/"})

		resp, b = do(t, ac, newRequest(t, "GET", s.URL+"/admin/login/?next=/admin/", nil))
		expect(t, resp, b, 200, nil)
		m := regexp.MustCompile(`name="csrfmiddlewaretoken" value="([^"]+)"`).FindSubmatch(b)
		if m == nil {
			t.Fatalf("no CSRF token in the login form:\n%s", b)
		}
		form := url.Values{"username": {"admin"}, "password": {"correct-horse-battery"},
			"csrfmiddlewaretoken": {string(m[1])}, "next": {"/admin/"}}

		// Without the CSRF cookie Django refuses the POST.
		bare := &http.Client{Transport: c.Transport, Timeout: c.Timeout}
		req := newRequest(t, "POST", s.URL+"/admin/login/?next=/admin/", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, b = do(t, bare, req)
		expect(t, resp, b, 403, nil)
		contains(t, string(b), "CSRF", "403 body")

		wrong := url.Values{}
		for k, v := range form {
			wrong[k] = v
		}
		wrong.Set("password", "wrong")
		req = newRequest(t, "POST", s.URL+"/admin/login/?next=/admin/", strings.NewReader(wrong.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, b = do(t, ac, req)
		expect(t, resp, b, 200, nil)
		contains(t, string(b), "Please enter the correct username and password", "failed login")

		req = newRequest(t, "POST", s.URL+"/admin/login/?next=/admin/", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, b = do(t, ac, req)
		expect(t, resp, b, 302, map[string]string{"Location": "/admin/"})

		for i := 0; i < 4; i++ { // the session works whichever worker answers
			resp, b = do(t, ac, newRequest(t, "GET", s.URL+"/admin/", nil))
			expect(t, resp, b, 200, nil)
			contains(t, string(b), "Site administration", "admin index")
		}
	})
}

// TestFrameworkBottle serves examples/bottle_app.py.
func TestFrameworkBottle(t *testing.T) {
	needPythonModule(t, "bottle")
	s := startExample(t, "bottle_app", hornbeam.Options{})
	c := newClient(t)

	t.Run("JSON route", func(t *testing.T) {
		resp, b := do(t, c, newRequest(t, "GET", s.URL+"/api/status", nil))
		expect(t, resp, b, 200, map[string]string{"Content-Type": "application/json"})
		var got map[string]any
		decodeJSON(t, b, &got)
		if got["status"] != "ok" || got["framework"] != "bottle" {
			t.Errorf("status: %s", b)
		}
	})

	t.Run("URL parameters", func(t *testing.T) {
		resp, b := do(t, c, newRequest(t, "GET", s.URL+"/hello/hornbeam", nil))
		expect(t, resp, b, 200, map[string]string{"Content-Type": "text/plain; charset=utf-8"})
		if string(b) != "Hello, hornbeam!" {
			t.Errorf("body %q", b)
		}

		resp, b = do(t, c, newRequest(t, "GET", s.URL+"/add/40/2", nil))
		expect(t, resp, b, 200, map[string]string{"Content-Type": "application/json"})
		var sum struct{ A, B, Sum int }
		decodeJSON(t, b, &sum)
		if sum.A != 40 || sum.B != 2 || sum.Sum != 42 {
			t.Errorf("add: %s", b)
		}
	})

	t.Run("404", func(t *testing.T) {
		for _, p := range []string{"/add/forty/2", "/nothing-here"} {
			resp, b := do(t, c, newRequest(t, "GET", s.URL+p, nil))
			expect(t, resp, b, 404, nil)
		}
	})
}

// unknownLength hides a reader's length, so net/http sends it chunked.
type unknownLength struct{ r io.Reader }

func (u unknownLength) Read(p []byte) (int, error) { return u.r.Read(p) }

// TestExampleUpload sends bodies of several sizes, with Content-Length and
// chunked, to examples/upload_app.py, which hashes what it reads.
func TestExampleUpload(t *testing.T) {
	s := startExample(t, "upload_app", hornbeam.Options{})
	c := newClient(t)

	type result struct {
		Length        int
		SHA256        string
		ContentLength string `json:"content_length"`
		Input         string
	}
	post := func(t *testing.T, body io.Reader, contentLength int64) result {
		t.Helper()
		req := newRequest(t, "POST", s.URL+"/upload", body)
		req.ContentLength = contentLength
		req.Header.Set("Content-Type", "application/octet-stream")
		var chunked bool
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			WroteHeaderField: func(k string, v []string) {
				chunked = chunked || k == "Transfer-Encoding" && v[0] == "chunked"
			},
		}))
		resp, b := do(t, c, req)
		expect(t, resp, b, 200, map[string]string{"Content-Type": "application/json"})
		if chunked != (contentLength < 0) {
			t.Fatalf("the body was sent chunked=%v; want chunked=%v", chunked, contentLength < 0)
		}
		var r result
		decodeJSON(t, b, &r)
		return r
	}

	const mib, kib = 1 << 20, 1 << 10
	for _, tc := range []struct {
		name    string
		size    int
		chunked bool
		input   string // the type of wsgi.input, when it matters
	}{
		{"10 KB", 10 << 10, false, "BytesIO"},
		{"5 MB spooled", 5 * mib, false, "BufferedReader"},
		{"1 byte", 1, false, ""},
		{"chunked 60 KB", 60 << 10, true, "BytesIO"},
		{"chunked exactly 64 KiB", 64 * kib, true, "BytesIO"},
		{"chunked 64 KiB + 1", 64*kib + 1, true, "BufferedReader"},
		{"chunked 100 KB", 100 << 10, true, "BufferedReader"},
		{"chunked 3 MB", 3 * mib, true, "BufferedReader"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, sum := randomBytes(t, tc.size)
			var r result
			if tc.chunked {
				r = post(t, unknownLength{bytes.NewReader(data)}, -1)
			} else {
				r = post(t, bytes.NewReader(data), int64(len(data)))
			}
			if r.Length != tc.size || r.SHA256 != sum {
				t.Errorf("the app read %d bytes with sha256 %s; sent %d bytes with sha256 %s", r.Length, r.SHA256, tc.size, sum)
			}
			if r.ContentLength != strconv.Itoa(tc.size) {
				t.Errorf("CONTENT_LENGTH %q, want %d", r.ContentLength, tc.size)
			}
			if tc.input != "" && r.Input != tc.input {
				t.Errorf("wsgi.input is a %s, want a %s (bodies over 64 KiB reach the worker as a file)", r.Input, tc.input)
			}
		})
	}

	t.Run("Expect: 100-continue", func(t *testing.T) {
		// As curl sends a large file: the body follows the server's 100.
		tr := c.Transport.(*http.Transport).Clone()
		tr.ExpectContinueTimeout = 10 * time.Second
		t.Cleanup(tr.CloseIdleConnections)
		data, sum := randomBytes(t, 2<<20)
		var got100 bool
		req := newRequest(t, "POST", s.URL+"/upload", bytes.NewReader(data))
		req.Header.Set("Expect", "100-continue")
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			Got100Continue: func() { got100 = true },
		}))
		resp, b := do(t, &http.Client{Transport: tr, Timeout: 30 * time.Second}, req)
		expect(t, resp, b, 200, nil)
		if !got100 {
			t.Error("no 100 Continue before the body was sent")
		}
		var r result
		decodeJSON(t, b, &r)
		if r.Length != len(data) || r.SHA256 != sum {
			t.Errorf("the app read %d bytes with sha256 %s; sent %d with %s", r.Length, r.SHA256, len(data), sum)
		}
	})

	t.Run("empty body", func(t *testing.T) {
		r := post(t, http.NoBody, 0)
		empty := sha256.Sum256(nil)
		if r.Length != 0 || r.SHA256 != hex.EncodeToString(empty[:]) {
			t.Errorf("empty POST: %+v", r)
		}
	})

	t.Run("raw chunked", func(t *testing.T) {
		out := rawExchange(t, s, "POST /upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"+
			"5\r\nhello\r\n1\r\n,\r\n6\r\n world\r\n0\r\n\r\n")
		sum := sha256.Sum256([]byte("hello, world"))
		if !strings.HasPrefix(out, "HTTP/1.1 200 ") {
			t.Fatalf("response:\n%s", out)
		}
		contains(t, out, `"length": 12, "sha256": "`+hex.EncodeToString(sum[:])+`"`, "raw chunked upload")
	})

	t.Run("multipart form", func(t *testing.T) {
		file, fileSum := randomBytes(t, 300<<10)
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		mw.WriteField("note", "holiday photos")
		h := make(textproto.MIMEHeader)
		h.Set("Content-Disposition", `form-data; name="photo"; filename="beach.jpg"`)
		h.Set("Content-Type", "image/jpeg")
		pw, _ := mw.CreatePart(h)
		pw.Write(file)
		mw.Close()
		req := newRequest(t, "POST", s.URL+"/upload/form", &buf)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		resp, b := do(t, c, req)
		expect(t, resp, b, 200, map[string]string{"Content-Type": "application/json"})
		var got struct {
			Parts []struct {
				Name, Filename, SHA256 string
				ContentType            string `json:"content_type"`
				Length                 int
			}
		}
		decodeJSON(t, b, &got)
		noteSum := sha256.Sum256([]byte("holiday photos"))
		if len(got.Parts) != 2 {
			t.Fatalf("parts: %s", b)
		}
		if p := got.Parts[0]; p.Name != "note" || p.Filename != "" || p.Length != 14 || p.SHA256 != hex.EncodeToString(noteSum[:]) {
			t.Errorf("note part: %+v", p)
		}
		if p := got.Parts[1]; p.Name != "photo" || p.Filename != "beach.jpg" || p.ContentType != "image/jpeg" || p.Length != len(file) || p.SHA256 != fileSum {
			t.Errorf("photo part: %+v (want %d bytes, sha256 %s)", p, len(file), fileSum)
		}
	})

	t.Run("GET is 405", func(t *testing.T) {
		resp, b := do(t, c, newRequest(t, "GET", s.URL+"/upload", nil))
		expect(t, resp, b, 405, map[string]string{"Allow": "POST"})
	})
}

// TestExampleFileWrapper downloads files sent with wsgi.file_wrapper by
// examples/file_app.py. Not parallel: it sets FILE_APP_ROOT for the workers.
func TestExampleFileWrapper(t *testing.T) {
	root := t.TempDir()
	big, _ := randomBytes(t, 3*1000*1000+17)
	files := map[string][]byte{
		"big.bin":   big,
		"notes.txt": []byte("plain text\n"),
		"empty.bin": nil,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(root, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(filepath.Dir(root), "secret.txt"), []byte("secret"), 0o644)
	t.Setenv("FILE_APP_ROOT", root)
	s := startExample(t, "file_app", hornbeam.Options{})
	c := newClient(t)

	for i, tc := range []struct{ name, contentType string }{
		{"big.bin", "application/octet-stream"},
		{"notes.txt", "text/plain"},
		{"empty.bin", "application/octet-stream"},
		{"big.bin", "application/octet-stream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var reused bool
			req := newRequest(t, "GET", s.URL+"/files/"+tc.name, nil)
			req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
				GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
			}))
			resp, b := do(t, c, req)
			want := files[tc.name]
			expect(t, resp, b, 200, map[string]string{"Content-Type": tc.contentType})
			if resp.Header.Get("Content-Length") != strconv.Itoa(len(want)) {
				t.Errorf("Content-Length %q, want %d", resp.Header.Get("Content-Length"), len(want))
			}
			if !bytes.Equal(b, want) {
				t.Errorf("downloaded %d bytes, not identical to the %d of the file", len(b), len(want))
			}
			if i > 0 && !reused {
				t.Error("a new connection: the keep-alive connection did not survive the previous download")
			}
		})
	}

	t.Run("HEAD", func(t *testing.T) {
		for i := 0; i < 2; i++ { // then a GET on the same connection
			resp, b := do(t, c, newRequest(t, "HEAD", s.URL+"/files/big.bin", nil))
			expect(t, resp, b, 200, map[string]string{"Content-Length": strconv.Itoa(len(big))})
			if len(b) != 0 {
				t.Errorf("HEAD response with a %d-byte body", len(b))
			}
			resp, b = do(t, c, newRequest(t, "GET", s.URL+"/files/notes.txt", nil))
			expect(t, resp, b, 200, nil)
			if string(b) != "plain text\n" {
				t.Errorf("GET after HEAD: %q", b)
			}
		}
	})

	t.Run("concurrent downloads", func(t *testing.T) {
		errs := make(chan error, 6)
		for i := 0; i < cap(errs); i++ {
			go func() {
				resp, err := c.Get(s.URL + "/files/big.bin")
				if err != nil {
					errs <- err
					return
				}
				defer resp.Body.Close()
				h := sha256.New()
				n, err := io.Copy(h, resp.Body)
				switch {
				case err != nil:
					errs <- err
				case resp.StatusCode != 200 || n != int64(len(big)) || !bytes.Equal(h.Sum(nil), sha256Of(big)):
					errs <- fmt.Errorf("status %d, %d bytes, content differs or not", resp.StatusCode, n)
				default:
					errs <- nil
				}
			}()
		}
		for i := 0; i < cap(errs); i++ {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("not found", func(t *testing.T) {
		for _, p := range []string{"/files/missing.bin", "/files/..%2Fsecret.txt", "/files/", "/files/..", "/elsewhere"} {
			resp, b := do(t, c, newRequest(t, "GET", s.URL+p, nil))
			expect(t, resp, b, 404, map[string]string{"Content-Type": "text/plain"})
		}
	})
}

func sha256Of(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

// TestExampleEarlyHints checks that examples/early_hints_app.py's 103 Early
// Hints reach the client before the final response.
func TestExampleEarlyHints(t *testing.T) {
	s := startExample(t, "early_hints_app", hornbeam.Options{})
	const link = "</style.css>; rel=preload; as=style"

	check := func(t *testing.T, c *http.Client, wantProto int) {
		var events []string
		var hintLink []string
		req := newRequest(t, "GET", s.URL+"/", nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
				events = append(events, strconv.Itoa(code))
				hintLink = h.Values("Link")
				return nil
			},
		}))
		resp, b := do(t, c, req)
		events = append(events, strconv.Itoa(resp.StatusCode))
		expect(t, resp, b, 200, map[string]string{"Content-Type": "text/html"})
		if resp.ProtoMajor != wantProto {
			t.Errorf("the response came over %s, want HTTP/%d", resp.Proto, wantProto)
		}
		if strings.Join(events, ",") != "103,200" {
			t.Errorf("responses received: %v, want 103 then 200", events)
		}
		if len(hintLink) != 1 || hintLink[0] != link {
			t.Errorf("103 Link headers %q, want [%q]", hintLink, link)
		}
		contains(t, string(b), `<link rel="stylesheet" href="/style.css">`, "page")
	}

	t.Run("HTTP/1.1 client", func(t *testing.T) {
		check(t, newClient(t), 1)
	})

	t.Run("h2c client", func(t *testing.T) {
		tr := &http.Transport{Protocols: new(http.Protocols)}
		tr.Protocols.SetUnencryptedHTTP2(true)
		t.Cleanup(tr.CloseIdleConnections)
		check(t, &http.Client{Transport: tr, Timeout: 30 * time.Second}, 2)
	})

	t.Run("raw HTTP/1.1", func(t *testing.T) {
		out := rawExchange(t, s, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		hints := strings.Index(out, "HTTP/1.1 103 Early Hints\r\n")
		final := strings.Index(out, "HTTP/1.1 200 OK\r\n")
		if hints != 0 || final < 0 {
			t.Fatalf("want the response to start with a 103, then a 200; got:\n%s", out)
		}
		head, _, _ := strings.Cut(out[:final], "\r\n\r\n")
		if !strings.Contains(head, "\r\nLink: "+link) {
			t.Errorf("the 103 has no Link header:\n%s", out[:final])
		}
		if !strings.Contains(out[final:], "Rendered after the hints") {
			t.Errorf("no page after the 200:\n%s", out[final:])
		}
	})

	t.Run("raw HTTP/1.0 gets no 103", func(t *testing.T) {
		// RFC 9110 15.2: a server MUST NOT send a 1xx response to an
		// HTTP/1.0 client.
		out := rawExchange(t, s, "GET / HTTP/1.0\r\nHost: x\r\n\r\n")
		if !strings.HasPrefix(out, "HTTP/1.0 200 OK\r\n") {
			t.Errorf("want a lone 200 for an HTTP/1.0 request; got:\n%s", out)
		}
	})
}

// TestExampleErrors checks what a client and the error log get from
// examples/error_app.py's failures and output.
func TestExampleErrors(t *testing.T) {
	s := startExample(t, "error_app", hornbeam.Options{})
	c := newClient(t)

	t.Run("400 from the app", func(t *testing.T) {
		resp, b := do(t, c, newRequest(t, "GET", s.URL+"/bad-request", nil))
		expect(t, resp, b, 400, map[string]string{"Content-Type": "text/plain; charset=utf-8"})
		if string(b) != "bad request: the 'name' parameter is required\n" {
			t.Errorf("body %q", b)
		}
	})

	t.Run("exception is a 500 and a traceback in the log", func(t *testing.T) {
		resp, b := do(t, c, newRequest(t, "GET", s.URL+"/boom", nil))
		expect(t, resp, b, 500, nil)
		if strings.Contains(string(b), "on fire") || strings.Contains(string(b), "Traceback") {
			t.Errorf("the 500 shows the client the error: %q", b)
		}
		waitLog(t, s, regexp.MustCompile(`\[worker \d+\] Traceback \(most recent call last\):`))
		waitLog(t, s, regexp.MustCompile(`\[worker \d+\] .*error_app\.py", line \d+, in application`))
		waitLog(t, s, regexp.MustCompile(`\[worker \d+\] error_app\.BoomError: boom: the database is on fire`))
		waitLog(t, s, regexp.MustCompile(`GET /boom: BoomError: boom: the database is on fire \(500\)`))

		// The worker survives: the next requests are served.
		for i := 0; i < 4; i++ {
			resp, b = do(t, c, newRequest(t, "GET", s.URL+"/bad-request", nil))
			expect(t, resp, b, 400, nil)
		}
	})

	t.Run("exception mid-response cuts the connection", func(t *testing.T) {
		resp, err := c.Get(s.URL + "/boom-midway")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !strings.HasPrefix(string(b), "first part of the response\n") {
			t.Errorf("status %d, body %q", resp.StatusCode, b)
		}
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("reading the body: %v; want io.ErrUnexpectedEOF: the client must see the response is truncated", err)
		}
		waitLog(t, s, regexp.MustCompile(`\[worker \d+\] error_app\.BoomError: failed after the response started`))
	})

	t.Run("wsgi.errors and stdout reach the log", func(t *testing.T) {
		msg := fmt.Sprintf("marker-%d", time.Now().UnixNano())
		resp, b := do(t, c, newRequest(t, "GET", s.URL+"/errors?msg="+msg, nil))
		expect(t, resp, b, 200, nil)
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatalf("body %q is not a pid", b)
		}
		for _, line := range []string{"wsgi.errors: " + msg, "stdout: " + msg} {
			waitLog(t, s, regexp.MustCompile(`(?m)`+regexp.QuoteMeta(fmt.Sprintf("[worker %d] %s", pid, line))+`$`))
		}
	})
}

// TestExampleMiddleware checks examples/middleware_app.py: a header added
// and a log line per request.
func TestExampleMiddleware(t *testing.T) {
	s := startExample(t, "middleware_app", hornbeam.Options{})
	c := newClient(t)
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/hello", 200},
		{fmt.Sprintf("/missing-%d", time.Now().UnixNano()), 404},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, b := do(t, c, newRequest(t, "GET", s.URL+tc.path, nil))
			expect(t, resp, b, tc.status, map[string]string{"Content-Type": "text/plain"})
			rt := resp.Header.Get("X-Request-Time")
			if secs, err := strconv.ParseFloat(rt, 64); err != nil || secs < 0 || secs > 10 {
				t.Errorf("X-Request-Time %q, want seconds", rt)
			}
			if tc.status == 200 {
				contains(t, string(b), "Hello from behind the middleware!", "body")
			}
			line := waitLog(t, s, regexp.MustCompile(`\[worker \d+\] GET `+regexp.QuoteMeta(tc.path)+
				` -> `+strconv.Itoa(tc.status)+` [A-Za-z ]+ in [0-9.]+ ms`))
			t.Log(line)
		})
	}
}
