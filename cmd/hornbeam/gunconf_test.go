package main

// gunicorn.conf.py: read with the configured Python (-c FILE.py, or
// ./gunicorn.conf.py when no -c is given), its settings mapped onto
// hornbeam's (the command line winning), one warning or a refusal for
// what hornbeam lacks, and its server hooks called where gunicorn calls
// them (checked by hooks that write to a file).

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hornbeam-go/hornbeam/internal/testutil"
)

// runIn runs hornbeam --python /usr/bin/python3 ARGS in dir (for
// --print-config and refusals: nothing is served) and returns its output
// and exit status.
func runIn(t *testing.T, dir string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, hornbeamBin, append([]string{"--python", python}, args...)...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "HORNBEAM_") || gunicornEnv(kv) {
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	cmd.Env = append(append(cmd.Env, "TMPDIR="+t.TempDir()), env...)
	var o, e syncBuffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("hornbeam %s: still running after 30s", strings.Join(args, " "))
	}
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A gunicorn.conf.py as people write them: its settings become hornbeam's
// (--print-config shows each from the file), the command line wins, what
// hornbeam lacks gets one warning each, gunicorn's defaults for what it
// refuses pass silently.
func TestGunicornConfPrintConfig(t *testing.T) {
	needPython(t)
	dir := t.TempDir()
	conf := `import multiprocessing
import os

bind = ["127.0.0.1:9001", "unix:/tmp/hb-gconf.sock"]
workers = 3
threads = 2
worker_class = "gthread"
timeout = 45
graceful_timeout = 12
keepalive = 5
max_requests = 1000
max_requests_jitter = 50
accesslog = "-"
errorlog = "-"
loglevel = "warning"
access_log_format = '%(h)s "%(r)s" %(s)s'
chdir = "."
pythonpath = "lib,vendor"
raw_env = ["A=1", "B=two words"]
preload_app = True
reload = False
forwarded_allow_ips = "10.0.0.1,10.0.0.2"
proxy_protocol = True
limit_request_line = 8000
limit_request_fields = 50
limit_request_field_size = 4000
pidfile = "/tmp/hb-gconf.pid"
proc_name = "gconf-app"
umask = 0o007
# gunicorn's example configuration: defaults hornbeam has no switch for
backlog = 2048
worker_connections = 1000
daemon = False
spew = False
user = None
group = None
tmp_upload_dir = None
# what hornbeam lacks
capture_output = True
tmp_upload_dir = "/var/tmp"
wrokers = 5
WORKERS = 5
MY_CONSTANT = 1
cpus = multiprocessing.cpu_count()

def helper():
    return 1
`
	writeFile(t, filepath.Join(dir, "gunicorn.conf.py"), conf)
	want := []string{
		`bind = ["127.0.0.1:9001", "unix:/tmp/hb-gconf.sock"]  # file gunicorn.conf.py`,
		`workers = 3  # file gunicorn.conf.py`, `threads = 2  # file gunicorn.conf.py`,
		`worker_class = "gthread"  # file gunicorn.conf.py`, `timeout = "45s"  # file gunicorn.conf.py`,
		`graceful_timeout = "12s"  # file gunicorn.conf.py`, `keepalive = "5s"  # file gunicorn.conf.py`,
		`max_requests = 1000  # file gunicorn.conf.py`, `max_requests_jitter = 50  # file gunicorn.conf.py`,
		`access_log = "-"  # file gunicorn.conf.py`, `error_log = ""  # file gunicorn.conf.py`,
		`log_level = "warning"  # file gunicorn.conf.py`, `access_logformat = "%(h)s \"%(r)s\" %(s)s"  # file gunicorn.conf.py`,
		`chdir = "."  # file gunicorn.conf.py`, `pythonpath = ["lib", "vendor"]  # file gunicorn.conf.py`,
		`env = ["A=1", "B=two words"]  # file gunicorn.conf.py`, `preload = true  # file gunicorn.conf.py`,
		`reload = false  # file gunicorn.conf.py`, `forwarded_allow_ips = ["10.0.0.1", "10.0.0.2"]  # file gunicorn.conf.py`,
		`proxy_protocol = true  # file gunicorn.conf.py`, `limit_request_line = 8000  # file gunicorn.conf.py`,
		`limit_request_fields = 50  # file gunicorn.conf.py`, `limit_request_field_size = 4000  # file gunicorn.conf.py`,
		`pid = "/tmp/hb-gconf.pid"  # file gunicorn.conf.py`, `name = "gconf-app"  # file gunicorn.conf.py`,
		`umask = "7"  # file gunicorn.conf.py`,
	}
	check := func(t *testing.T, stdout string, want []string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(stdout, "\n"+w+"\n") {
				t.Errorf("--print-config lacks the line %s", w)
			}
		}
	}
	t.Run("./gunicorn.conf.py when no -c", func(t *testing.T) {
		stdout, stderr, code := runIn(t, dir, nil, "--print-config")
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		check(t, stdout, want)
		wantWarn := []string{
			"hornbeam: warning: gunicorn.conf.py: WORKERS is not read: gunicorn's settings are lower case (workers)",
			"hornbeam: warning: gunicorn.conf.py: capture_output = True has no effect: what the workers print always goes to the error log",
			"hornbeam: warning: gunicorn.conf.py: cpus is not a gunicorn setting hornbeam knows; ignored",
			"hornbeam: warning: gunicorn.conf.py: tmp_upload_dir = \"/var/tmp\" has no effect: request bodies above 64 KiB are spooled to TMPDIR",
			"hornbeam: warning: gunicorn.conf.py: wrokers is not a gunicorn setting hornbeam knows; ignored",
		}
		got := lines(stderr)
		sort.Strings(got)
		if len(got) != len(wantWarn) {
			t.Errorf("want %d warning lines, got:\n%s", len(wantWarn), stderr)
		}
		for i := range min(len(got), len(wantWarn)) {
			if !strings.HasPrefix(got[i], wantWarn[i]) {
				t.Errorf("warning %d: %q, want it to start %q", i, got[i], wantWarn[i])
			}
		}
	})
	t.Run("-c FILE.py from elsewhere; the command line, GUNICORN_CMD_ARGS and HORNBEAM_* win", func(t *testing.T) {
		other := t.TempDir()
		stdout, stderr, code := runIn(t, other, []string{"GUNICORN_CMD_ARGS=--threads 4", "HORNBEAM_TIMEOUT=7"},
			"-c", filepath.Join(dir, "gunicorn.conf.py"), "-w", "2", "--access-logfile", "/tmp/x.log", "--print-config")
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		check(t, stdout, []string{`workers = 2  # command line`, `access_log = "/tmp/x.log"  # command line`,
			`threads = 4  # env GUNICORN_CMD_ARGS`, `timeout = "7s"  # env HORNBEAM_TIMEOUT`, `keepalive = "5s"  # file ` + filepath.Join(dir, "gunicorn.conf.py")})
	})
	t.Run("-c python:MODULE", func(t *testing.T) {
		writeFile(t, filepath.Join(dir, "myconf.py"), "workers = 6\n")
		stdout, stderr, code := runIn(t, dir, nil, "-c", "python:myconf", "--print-config")
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		check(t, stdout, []string{`workers = 6  # file python:myconf`})
	})
	t.Run("a TOML --config still works; gunicorn.conf.py is then not read", func(t *testing.T) {
		writeFile(t, filepath.Join(dir, "hb.toml"), "workers = 9\n")
		stdout, stderr, code := runIn(t, dir, nil, "-c", "hb.toml", "--print-config")
		if code != 0 || strings.Contains(stderr, "gunicorn.conf.py") {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		check(t, stdout, []string{`workers = 9  # file hb.toml`, `threads = 1  # default`})
	})
	t.Run("--chdir DIR reads DIR/gunicorn.conf.py, as gunicorn does", func(t *testing.T) {
		stdout, stderr, code := runIn(t, t.TempDir(), nil, "--chdir", dir, "--print-config")
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		check(t, stdout, []string{`workers = 3  # file ` + filepath.Join(dir, "gunicorn.conf.py")})
	})
}

// What a gunicorn.conf.py sets that hornbeam refuses, or cannot read,
// stops it before anything starts: exit 2, the reason on stderr.
func TestGunicornConfRefusals(t *testing.T) {
	needPython(t)
	for _, c := range []struct {
		conf string
		want []string
	}{
		{"daemon = True\n", []string{"gunicorn.conf.py: daemon = True is not supported", "systemd"}},
		{"worker_tmp_dir = '/dev/shm'\n", []string{`worker_tmp_dir = "/dev/shm" is not supported`, "--timeout"}},
		{"backlog = 64\n", []string{"backlog = 64 is not supported", "somaxconn"}},
		{"statsd_host = 'localhost:8125'\n", []string{"statsd_host", "/metrics"}},
		{"logconfig_dict = {'version': 1}\n", []string{"logconfig_dict", "not Python logging"}},
		{"worker_class = 'gevent'\n", []string{"-k gevent", "gthread"}},
		{"workers = 'many'\n", []string{`workers = "many"`, "invalid"}},
		{"timeout = [1, 2]\n", []string{"timeout = [1, 2]", "single value"}},
		{"import ssl\nssl_version = object()\n", []string{"ssl_version", "object object"}},
		{"def ssl_context(conf, factory):\n    return factory()\n", []string{"ssl_context is not supported", "certfile"}},
		{"workers = (\n", []string{"failed when /usr/bin/python3 ran it", "SyntaxError"}},
		{"import no_such_module_here\n", []string{"ModuleNotFoundError", "no_such_module_here"}},
		{"wsgi_app = 42\n", []string{"wsgi_app = 42", "myapp:app"}},
	} {
		t.Run(strings.TrimSpace(c.conf), func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "gunicorn.conf.py"), c.conf)
			stdout, stderr, code := runIn(t, dir, nil, "ok_app")
			if code != 2 || stdout != "" {
				t.Errorf("exit %d, stdout %q; want 2 and nothing", code, stdout)
			}
			if !strings.HasPrefix(stderr, "hornbeam: ") {
				t.Errorf("stderr does not start with \"hornbeam: \":\n%s", stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
	// A Python that does not exist: the line says to pass --python.
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "g.py"), "workers = 2\n")
	_, stderr, code := runIn(t, dir, nil, "--python", "/nonexistent/python3", "-c", "g.py", "ok_app")
	if code != 2 || !strings.Contains(stderr, "pass --python") {
		t.Errorf("a missing interpreter: exit %d, %q", code, stderr)
	}
}

// readLines reads a file of lines, "" lines dropped.
func readLines(path string) []string {
	b, _ := os.ReadFile(path)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

func countPrefix(ls []string, prefix string) int {
	n := 0
	for _, l := range ls {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// A gunicorn.conf.py with hooks and logging settings, served: the settings
// took effect (bind, workers, raw_env, accesslog, the app from wsgi_app)
// and every hook hornbeam claims was called, with the arguments real hooks
// use, in the process it says (hooks write lines to a file).
func TestGunicornConfHooks(t *testing.T) {
	needFlask(t)
	td := testdata(t)
	dir := t.TempDir()
	port := freePort(t)
	events := filepath.Join(dir, "events")
	conf := fmt.Sprintf(`import os
import sys
os.environ["FROM_CONF_TOP"] = "set by the file"
print("the config file prints this")
sys.path.insert(0, "/nonexistent/extra")
bind = "127.0.0.1:%d"
workers = 2
wsgi_app = "factory_app:create_app('from the conf')"
pythonpath = %q
raw_env = ["FROM_CONF=yes"]
accesslog = %q
loglevel = "info"
EVENTS = %q

def _log(*parts):
    with open(EVENTS, "a") as f:
        f.write(" ".join(str(p) for p in parts) + "\n")

def on_starting(server):
    _log("on_starting", server.pid, server.num_workers, server.cfg.workers, os.getpid())
    server.log.info("on_starting says hello")

def when_ready(server):
    _log("when_ready", server.pid, server.cfg.bind[0])

def pre_fork(server, worker):
    _log("pre_fork", server.pid, worker.age)

def post_fork(server, worker):
    _log("post_fork", worker.pid, worker.age, server.pid, worker.cfg.workers)

def post_worker_init(worker):
    _log("post_worker_init", worker.pid, worker.wsgi is not None, os.environ.get("FROM_CONF"))

def pre_request(worker, req):
    req.started = 1
    _log("pre_request", worker.pid, req.method, req.path, req.query, req.version)

def post_request(worker, req, environ, resp):
    _log("post_request", worker.pid, req.method, req.path, req.started, resp.status_code, environ["PATH_INFO"])

def worker_exit(server, worker):
    _log("worker_exit", worker.pid, server.pid)

def child_exit(server, worker):
    _log("child_exit", worker.pid)

def on_exit(server):
    _log("on_exit", server.pid)

def nworkers_changed(server, new_value, old_value):
    pass
`, port, td, filepath.Join(dir, "access.log"), events)
	writeFile(t, filepath.Join(dir, "gunicorn.conf.py"), conf)
	p := startHB(t, nil, "-c", filepath.Join(dir, "gunicorn.conf.py"))
	p.waitReady(p.stderr.String)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	if b := body(url + "/"); b != "from the conf" {
		t.Errorf("GET /: %q, want the app wsgi_app names", b)
	}
	if b := body(url + "/env/FROM_CONF"); b != "yes" {
		t.Errorf("FROM_CONF in the worker: %q, want raw_env's yes", b)
	}
	if n := len(workers(p.cmd.Process.Pid)); n != 2 {
		t.Errorf("%d workers, want the file's 2", n)
	}
	if b := body(url + "/env/FROM_CONF_TOP"); b != "set by the file" {
		t.Errorf("FROM_CONF_TOP in the worker: %q; the file's os.environ change should reach the workers, as in gunicorn's master", b)
	}
	for _, w := range []string{"the config file prints this", `adds /nonexistent/extra to sys.path, which hornbeam's workers do not see: set pythonpath = "/nonexistent/extra"`} {
		if !strings.Contains(p.stderr.String(), w) {
			t.Errorf("stderr lacks %q:\n%s", w, p.stderr)
		}
	}
	if !until(5*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "access.log"))
		return strings.Contains(string(b), "GET /env/FROM_CONF")
	}) {
		t.Errorf("the file's accesslog has no line for the request")
	}
	if strings.Contains(p.stderr.String(), "hook nworkers_changed is not called") {
		t.Errorf("a warning for the nworkers_changed hook, which is called:\n%s", p.stderr)
	}
	if !strings.Contains(p.stderr.String(), "[on_starting] on_starting says hello") {
		t.Errorf("server.log.info in on_starting did not reach the error log:\n%s", p.stderr)
	}
	if !until(5*time.Second, func() bool { return countPrefix(readLines(events), "when_ready") == 1 }) {
		t.Errorf("when_ready not called")
	}
	wpids := workers(p.cmd.Process.Pid)
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
	ev := readLines(events)
	t.Logf("events:\n%s", strings.Join(ev, "\n"))
	hb := strconv.Itoa(p.cmd.Process.Pid)
	first := func(prefix string) []string {
		for _, l := range ev {
			if strings.HasPrefix(l, prefix+" ") {
				return strings.Fields(l)
			}
		}
		t.Errorf("no %s call", prefix)
		return make([]string, 8)
	}
	if f := first("on_starting"); f[1] != hb || f[2] != "2" || f[3] != "2" || f[4] == hb {
		t.Errorf("on_starting(server): %q; want the server's pid %s, 2 workers, in a process of its own", f, hb)
	}
	if f := first("when_ready"); f[1] != hb || f[2] != fmt.Sprintf("127.0.0.1:%d", port) {
		t.Errorf("when_ready(server): %q", f)
	}
	if f := first("on_exit"); f[1] != hb || ev[len(ev)-1] != strings.Join(f, " ") {
		t.Errorf("on_exit(server): %q, want it last with pid %s", f, hb)
	}
	if n := countPrefix(ev, "pre_fork"); n != 2 {
		t.Errorf("pre_fork called %d times, want 2", n)
	}
	ages := map[string]bool{}
	for _, l := range ev {
		if f := strings.Fields(l); f[0] == "post_fork" {
			ages[f[2]] = true
			if f[3] != hb || f[4] != "2" {
				t.Errorf("post_fork: %q, want server.pid %s and cfg.workers 2", l, hb)
			}
		}
	}
	if !ages["1"] || !ages["2"] {
		t.Errorf("post_fork worker.age: %v, want 1 and 2", ages)
	}
	for _, w := range wpids {
		ws := strconv.Itoa(w)
		for _, h := range []string{"post_fork " + ws, "post_worker_init " + ws + " True yes", "worker_exit " + ws + " " + hb, "child_exit " + ws} {
			if countPrefix(ev, h) != 1 {
				t.Errorf("want one %q line", h)
			}
		}
	}
	if n := countPrefix(ev, "pre_request"); n != 3 {
		t.Errorf("pre_request called %d times, want 3", n)
	}
	if !strings.Contains(strings.Join(ev, "\n"), " GET /env/FROM_CONF  (1, 1)") {
		t.Errorf("pre_request: no line with req.method, req.path, req.query and req.version")
	}
	if !strings.Contains(strings.Join(ev, "\n"), " GET /env/FROM_CONF 1 200 /env/FROM_CONF") {
		t.Errorf("post_request: no line with the req pre_request saw, resp.status_code and the environ")
	}
}

// Bind addresses as gunicorn reads them: a host alone is port 8000,
// tcp:// is dropped, fd://N is refused with what to use instead.
func TestGunicornBindForms(t *testing.T) {
	for in, want := range map[string]string{
		"0.0.0.0": "0.0.0.0:8000", "localhost": "localhost:8000", "[::1]": "[::1]:8000", "tcp://127.0.0.1:5000": "127.0.0.1:5000",
		"127.0.0.1:5000": "127.0.0.1:5000", ":9000": ":9000", "unix:/run/app.sock": "unix:/run/app.sock", "[::]:80": "[::]:80",
	} {
		if got, err := gunicornBind(in); err != nil || got != want {
			t.Errorf("gunicornBind(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	needPython(t)
	_, stderr, code := runIn(t, t.TempDir(), nil, "-b", "fd://3", "ok_app")
	if ls := lines(stderr); code != 2 || len(ls) != 1 || !strings.Contains(ls[0], "socket activation") {
		t.Errorf("-b fd://3: exit %d, %q", code, stderr)
	}
}

// A hook that raises: on_starting stops hornbeam (exit 1, the traceback
// logged), pre_request fails its request with 500 and the worker serves
// on, post_request's exception is logged and the response stands. With
// the embedded workers each worker hook gets a warning that it is not
// called.
func TestGunicornConfHookFailures(t *testing.T) {
	needPython(t)
	td := testdata(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "gunicorn.conf.py"), "def on_starting(server):\n    raise RuntimeError('refusing to start')\n")
	_, stderr, code := runIn(t, dir, nil, "-b", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--pythonpath", td, "ok_app")
	if code != 1 || !strings.Contains(stderr, "RuntimeError: refusing to start") || !strings.Contains(stderr, "hook on_starting failed") {
		t.Errorf("on_starting raising: exit %d, want 1 with the traceback:\n%s", code, stderr)
	}

	conf := filepath.Join(dir, "hooks.py")
	writeFile(t, conf, `def pre_request(worker, req):
    if req.path == "/boom":
        raise ValueError("pre_request says no")

def post_request(worker, req, environ, resp):
    raise KeyError("post_request broke")
`)
	port := freePort(t)
	p := startHB(t, nil, "-b", fmt.Sprintf("127.0.0.1:%d", port), "-w", "1", "--pythonpath", td, "-c", conf, "ok_app")
	p.waitReady(p.stderr.String)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	if code, _ := get(t, nil, url+"/boom"); code != 500 {
		t.Errorf("GET /boom with pre_request raising: %d, want 500", code)
	}
	if code, b := get(t, nil, url+"/hello"); code != 200 || b != "hello from ok_app" {
		t.Errorf("GET /hello after: %d %q, want the worker serving on", code, b)
	}
	if !until(5*time.Second, func() bool {
		s := p.stderr.String()
		return strings.Contains(s, "ValueError: pre_request says no") && strings.Contains(s, "Exception in post_request hook") && strings.Contains(s, "KeyError: 'post_request broke'")
	}) {
		t.Errorf("the hooks' exceptions are not in the error log:\n%s", p.stderr)
	}

	writeFile(t, filepath.Join(dir, "gunicorn.conf.py"), "def post_fork(server, worker):\n    pass\ndef on_exit(server):\n    pass\n")
	_, stderr, code = runIn(t, dir, nil, "--worker-mode", "embedded", "--print-config")
	if ls := lines(stderr); code != 0 || len(ls) != 1 || !strings.Contains(ls[0], "hook post_fork is not called with --worker-mode embedded") {
		t.Errorf("embedded mode with a post_fork hook: exit %d, %q; want one warning", code, stderr)
	}
}

// A -c file without the .py extension that is not TOML is read as a
// gunicorn configuration, as gunicorn reads any -c file, with a warning;
// a .toml that does not parse stays a TOML error.
func TestGunicornConfWithoutExtension(t *testing.T) {
	needPython(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "gunicorn_settings"), "import os\nworkers = 5\nbind = ['127.0.0.1:9005']\n")
	stdout, stderr, code := runIn(t, dir, nil, "-c", "gunicorn_settings", "--print-config")
	if code != 0 || !strings.Contains(stdout, "\nworkers = 5  # file gunicorn_settings\n") || !strings.Contains(stderr, "is not TOML: read as a gunicorn configuration") {
		t.Errorf("-c gunicorn_settings: exit %d\n%s%s", code, stdout, stderr)
	}
	writeFile(t, filepath.Join(dir, "bad.toml"), "workers = (\n")
	_, stderr, code = runIn(t, dir, nil, "-c", "bad.toml", "--print-config")
	if code != 2 || !strings.Contains(stderr, "--config bad.toml: toml") {
		t.Errorf("-c bad.toml: exit %d, %q; want 2 and the TOML error", code, stderr)
	}
	writeFile(t, filepath.Join(dir, "neither"), "workers = (\n")
	_, stderr, code = runIn(t, dir, nil, "-c", "neither", "--print-config")
	if code != 2 || !strings.Contains(stderr, "neither TOML") || !strings.Contains(stderr, "SyntaxError") {
		t.Errorf("-c neither: exit %d, %q; want 2, the TOML and the Python errors", code, stderr)
	}
}

// on_reload (SIGHUP), nworkers_changed (SIGTTIN, SIGTTOU) and pre_exec
// (SIGUSR2) run on the server's side, as in gunicorn's master.
func TestGunicornConfSignalHooks(t *testing.T) {
	needFlask(t)
	dir := t.TempDir()
	events := filepath.Join(dir, "events")
	writeFile(t, filepath.Join(dir, "gunicorn.conf.py"), fmt.Sprintf(`bind = "127.0.0.1:%d"
workers = 1
pythonpath = %q
wsgi_app = "ok_app:application"
EVENTS = %q

def _log(*parts):
    with open(EVENTS, "a") as f:
        f.write(" ".join(str(p) for p in parts) + "\n")

def on_reload(server):
    _log("on_reload", server.pid)

def nworkers_changed(server, new_value, old_value):
    _log("nworkers_changed", new_value, old_value)

def pre_exec(server):
    _log("pre_exec", server.pid)
`, freePort(t), testdata(t), events))
	p := startHB(t, nil, "-c", filepath.Join(dir, "gunicorn.conf.py"))
	p.waitReady(p.stderr.String)
	hb := strconv.Itoa(p.cmd.Process.Pid)
	for _, step := range []struct {
		sig  syscall.Signal
		want string
	}{
		{syscall.SIGHUP, "on_reload " + hb},
		{syscall.SIGTTIN, "nworkers_changed 2 1"},
		{syscall.SIGTTOU, "nworkers_changed 1 2"},
		{syscall.SIGTTOU, ""}, // one worker is the minimum: no change, no call
		{syscall.SIGUSR2, "pre_exec " + hb},
	} {
		before := len(readLines(events))
		p.cmd.Process.Signal(step.sig)
		if step.want == "" {
			time.Sleep(500 * time.Millisecond)
			if ev := readLines(events); len(ev) != before {
				t.Errorf("%v with nothing changed called %q", step.sig, ev[before:])
			}
			continue
		}
		if !until(20*time.Second, func() bool { return countPrefix(readLines(events), step.want) == 1 }) {
			t.Fatalf("after %v: no %q in %q\n%s", step.sig, step.want, readLines(events), p.stderr)
		}
	}
	// The upgrade started a new hornbeam: stop it.
	if !until(10*time.Second, func() bool { return strings.Contains(p.stderr.String(), "started a new hornbeam (pid ") }) {
		t.Fatalf("no upgrade:\n%s", p.stderr)
	}
	log := p.stderr.String()
	i := strings.Index(log, "started a new hornbeam (pid ") + len("started a new hornbeam (pid ")
	if pid, err := strconv.Atoi(log[i : i+strings.IndexByte(log[i:], ')')]); err == nil {
		syscall.Kill(pid, syscall.SIGTERM)
		until(15*time.Second, func() bool { return syscall.Kill(pid, 0) != nil })
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// worker_int runs in a worker on SIGINT (it goes on serving: the server
// stops it) and on SIGQUIT (it exits and is replaced); worker_abort runs in
// a worker killed for a request past --timeout (SIGABRT before SIGKILL).
func TestGunicornConfWorkerSignalHooks(t *testing.T) {
	dir := t.TempDir()
	events := filepath.Join(dir, "events")
	port := freePort(t)
	writeFile(t, filepath.Join(dir, "gunicorn.conf.py"), fmt.Sprintf(`bind = "127.0.0.1:%d"
workers = 1
timeout = 1
pythonpath = %q
wsgi_app = "hang_app:application"
EVENTS = %q

def _log(*parts):
    with open(EVENTS, "a") as f:
        f.write(" ".join(str(p) for p in parts) + "\n")

def worker_int(worker):
    _log("worker_int", worker.pid)

def worker_abort(worker):
    _log("worker_abort", worker.pid)
`, port, testdata(t), events))
	p := startHB(t, nil, "-c", filepath.Join(dir, "gunicorn.conf.py"))
	p.waitReady(p.stderr.String)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	if strings.Contains(p.stderr.String(), "is not called") {
		t.Errorf("a hook reported as not called:\n%s", p.stderr)
	}
	pid := body(url + "/")
	waitEvent := func(want string) {
		t.Helper()
		if !until(15*time.Second, func() bool { return countPrefix(readLines(events), want) == 1 }) {
			t.Fatalf("no %q in %q\n%s", want, readLines(events), p.stderr)
		}
	}
	// SIGINT: the hook runs, the worker serves on.
	n, _ := strconv.Atoi(pid)
	syscall.Kill(n, syscall.SIGINT)
	waitEvent("worker_int " + pid)
	if again := body(url + "/"); again != pid {
		t.Errorf("after SIGINT the worker is %s, want %s still serving", again, pid)
	}
	// A request past --timeout: 504, then worker_abort in that worker.
	res, err := http.Get(url + "/hang")
	if err != nil || res.StatusCode != 504 {
		t.Fatalf("/hang: %v %v, want 504", res, err)
	}
	res.Body.Close()
	waitEvent("worker_abort " + pid)
	var next string
	if !until(15*time.Second, func() bool { next = body(url + "/"); return next != "" && next != pid }) {
		t.Fatalf("no new worker after the abort")
	}
	// SIGQUIT: the hook runs and the worker exits; a new one serves.
	n, _ = strconv.Atoi(next)
	syscall.Kill(n, syscall.SIGQUIT)
	waitEvent("worker_int " + next)
	if !until(15*time.Second, func() bool { b := body(url + "/"); return b != "" && b != next }) {
		t.Errorf("the worker that got SIGQUIT was not replaced")
	}
}

// TestGunicornWorkerHooksKeepProcessMode: with hornbeam-worker.so beside
// the binary the default is the embedded mode, but a gunicorn.conf.py that
// defines a worker hook keeps the process mode, the only one that calls
// it; a file with only server hooks does not.
func TestGunicornWorkerHooksKeepProcessMode(t *testing.T) {
	needPython(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "hornbeam")
	if b, err := os.ReadFile(hornbeamBin); err != nil || os.WriteFile(bin, b, 0o755) != nil {
		t.Fatal(err)
	}
	if _, err := testutil.BuildWorkerLibrary(dir, "../hornbeam-worker"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, conf, mode string
	}{
		{"worker hook", "def post_fork(server, worker):\n    pass\n", "process mode"},
		{"server hook only", "def when_ready(server):\n    pass\n", "embedded mode: "},
	} {
		t.Run(c.name, func(t *testing.T) {
			conf := filepath.Join(t.TempDir(), "gunicorn.conf.py")
			writeFile(t, conf, c.conf)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "--python", python, "-c", conf, "-w", "1", "-b", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--pythonpath", testdata(t), "ok_app")
			cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
			var stderr syncBuffer
			cmd.Stderr = &stderr
			cmd.WaitDelay = 2 * time.Second
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Wait()
			defer cmd.Process.Signal(syscall.SIGTERM)
			for !strings.Contains(stderr.String(), "listening on") {
				if ctx.Err() != nil {
					t.Fatalf("no start-up line:\n%s", stderr.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			if !strings.Contains(stderr.String(), "(1 workers, "+c.mode) {
				t.Errorf("want %q in the start-up line:\n%s", c.mode, stderr.String())
			}
		})
	}
}
