package asgi_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// --mount serves WSGI and ASGI apps side by side in each worker: the
// longest prefix first; WSGI sees SCRIPT_NAME and PATH_INFO, ASGI root_path
// and the whole path.
func TestMounts(t *testing.T) {
	needPython(t, "flask")
	s := start(t, nil, "", "--mount", "/api=asgi_app:app", "--mount", "/env=environ_app:application", "--mount", "/=flask_app:application")
	tests := []struct {
		path string
		code int
		want []string
	}{
		{"/api/scope?x=1", 200, []string{`"root_path": "/api"`, `"path": "/api/scope"`, `"query_string": "x=1"`}},
		{"/env/deep/path?format=json", 200, []string{`"SCRIPT_NAME": "/env"`, `"PATH_INFO": "/deep/path"`}},
		{"/env?format=json", 200, []string{`"SCRIPT_NAME": "/env"`, `"PATH_INFO": ""`}},
		{"/apiary", 404, nil}, // not under /api: Flask at / has no such route
		{"/", 200, nil},       // Flask's index
		{"/api/state", 200, []string{`"started": "yes"`}},
	}
	for _, tt := range tests {
		code, body := s.get(tt.path)
		if code != tt.code {
			t.Errorf("%s: status %d, want %d: %.200s", tt.path, code, tt.code, body)
		}
		for _, w := range tt.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: no %s in %.300s", tt.path, w, body)
			}
		}
	}
	// A WebSocket on the ASGI mount.
	c, _ := dial(t, s, "/api/ws/echo", nil)
	c.Write(t.Context(), 1, []byte("through a mount"))
	if _, got := read(t, c); got != "through a mount" {
		t.Errorf("echo %q", got)
	}
}

// Without a mount at /, a path outside every prefix is 404; the mounts
// come from the TOML config's [mount] table.
func TestMountsFromConfig(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "hornbeam.toml")
	os.WriteFile(cfg, []byte("[mount]\n\"/a\" = \"asgi_hello:app\"\n\"/b/c\" = \"asgi_app:app\"\n"), 0o644)
	s := start(t, nil, "", "--config", cfg)
	if code, body := s.get("/a/anything"); code != 200 || body != "Hello, World!" {
		t.Errorf("/a/anything: %d %q", code, body)
	}
	code, body := s.get("/b/c/scope")
	var sc map[string]any
	json.Unmarshal([]byte(body), &sc)
	if code != 200 || sc["root_path"] != "/b/c" {
		t.Errorf("/b/c/scope: %d %s", code, body)
	}
	for _, p := range []string{"/", "/b", "/ab"} {
		if code, _ := s.get(p); code != 404 {
			t.Errorf("%s: %d, want 404", p, code)
		}
	}
}

func TestMountErrors(t *testing.T) {
	needPython(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--mount", "api=asgi_app:app"}, "must start with /"},
		{[]string{"--mount", "/api/=asgi_app:app"}, "not end with one"},
		{[]string{"--mount", "/a=asgi_app:app", "--mount", "/a=asgi_hello:app"}, "mounted twice"},
		{[]string{"--mount", "/a"}, "PREFIX=MODULE:CALLABLE"},
		{[]string{"--mount", "/a=asgi_app:app", "--worker-mode", "process"}, "embedded worker mode"},
	} {
		out, err := runBounded(hbCommand(t, tt.args...), 15*time.Second)
		if err == nil || !strings.Contains(out, tt.want) {
			t.Errorf("%q: want a failure saying %q, got %v:\n%s", tt.args, tt.want, err, out)
		}
	}
}

// hornbeam check imports ASGI apps and mounts in an embedded worker and
// runs their lifespan startup.
func TestCheck(t *testing.T) {
	needPython(t)
	for _, tt := range []struct {
		env  []string
		args []string
		ok   bool
		want string
	}{
		{nil, []string{"check", "-k", "asgi", "asgi_app:app"}, true, "asgi_app:app imports"},
		{[]string{"ASGI_LIFESPAN=fail"}, []string{"check", "-k", "asgi", "asgi_app:app"}, false, "no database (ASGI_LIFESPAN=fail)"},
		{nil, []string{"--check-config", "--mount", "/a=asgi_hello:app", "--mount", "/b=environ_app:application"}, true, "/a=asgi_hello:app /b=environ_app:application imports"},
		{nil, []string{"--check-config", "--mount", "/a=no_such_module:app"}, false, "No module named 'no_such_module'"},
	} {
		cmd := hbCommand(t, tt.args...)
		cmd.Env = append(cmd.Env, tt.env...)
		out, err := runBounded(cmd, 20*time.Second)
		if (err == nil) != tt.ok || !strings.Contains(out, tt.want) {
			t.Errorf("%q: error %v, want ok=%v and %q in:\n%s", tt.args, err, tt.ok, tt.want, out)
		}
	}
}
