package main

// Coming from gunicorn: real gunicorn command lines, run through the built
// binary against a Flask app made by a factory (testdata/factory_app.py),
// each setting checked where it shows (the pid file, the workers' cwd and
// environment, the number of workers, the access log, the mount prefix);
// and the one line hornbeam prints for what it does not do.

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hornbeam-go/hornbeam"
)

// gunicornEnv reports whether kv is one of the variables gunicorn (and so
// hornbeam) reads: startHB keeps them out of the tests' environment.
func gunicornEnv(kv string) bool {
	for _, p := range []string{"PORT=", "WEB_CONCURRENCY=", "GUNICORN_CMD_ARGS=", "SCRIPT_NAME="} {
		if strings.HasPrefix(kv, p) {
			return true
		}
	}
	return false
}

func needFlask(t *testing.T) {
	t.Helper()
	needPython(t)
	if _, err := os.Stat("/usr/lib/python3/dist-packages/flask"); err != nil {
		t.Skip("python3-flask is not installed")
	}
}

func TestParseAppSpecFactory(t *testing.T) {
	good := map[string]string{
		"app":                        "app:application",
		"app:app":                    "app:app",
		"pkg.mod:obj.attr":           "pkg.mod:obj.attr",
		"app:create_app()":           "app:create_app()",
		`app:create_app('prod')`:     `app:create_app('prod')`,
		`app:f("a,b)", k=1, x=None)`: `app:f("a,b)", k=1, x=None)`,
		`app:f(-1.5e3, [1, (2,)], {'a': True}, b'x', s={1})`: `app:f(-1.5e3, [1, (2,)], {'a': True}, b'x', s={1})`,
		`app:f('it\'s')`: `app:f('it\'s')`,
	}
	for spec, want := range good {
		if got, err := hornbeam.ParseAppSpec(spec); err != nil || got != want {
			t.Errorf("ParseAppSpec(%q) = %q, %v; want %q", spec, got, err, want)
		}
	}
	for _, spec := range []string{
		"not a spec!", "app:", ":app", "app:create_app(", "app:create_app)", "app:create_app(os.getcwd())",
		"app:create_app(x)", "app:create_app(1)(2)", "app:create_app() + 1", "app:f(k=open('x'))",
		"app:f('unterminated)", "app:f(__import__('os'))", "app:f([1][0])", "app:(1)", "app:f(a=b=1)",
	} {
		if got, err := hornbeam.ParseAppSpec(spec); err == nil {
			t.Errorf("ParseAppSpec(%q) = %q, accepted", spec, got)
		} else if !strings.Contains(err.Error(), "MODULE:CALLABLE") {
			t.Errorf("ParseAppSpec(%q): %v, does not say what to write", spec, err)
		}
	}
}

func TestEditDistanceAndShellSplit(t *testing.T) {
	for _, c := range []struct {
		a, b string
		d    int
	}{{"", "abc", 3}, {"workres", "workers", 2}, {"acess-logfile", "access-logfile", 1}, {"same", "same", 0}} {
		if d := editDistance(c.a, c.b); d != c.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, d, c.d)
		}
	}
	words, err := shellSplit(` -w 3  --name 'my app' -e "A=b c" -e B=\"x\" `)
	want := []string{"-w", "3", "--name", "my app", "-e", "A=b c", "-e", `B="x"`}
	if err != nil || strings.Join(words, "|") != strings.Join(want, "|") {
		t.Errorf("shellSplit = %q, %v; want %q", words, err, want)
	}
	if _, err := shellSplit(`-n 'open`); err == nil {
		t.Error("shellSplit of an unterminated quote: no error")
	}
}

// TestGunicornCommandLines runs gunicorn-style command lines and checks
// that each setting took effect.
func TestGunicornCommandLines(t *testing.T) {
	needFlask(t)
	td := testdata(t)
	type run struct {
		dir, url string // the test's temporary directory, http://127.0.0.1:PORT
		port     int
		p        *hbProc
	}
	tests := []struct {
		name    string
		env     func(r *run) []string
		args    func(r *run) []string
		workers int
		check   func(t *testing.T, r *run)
	}{
		{
			name: "factory with arguments, --chdir, -p, -n, -e, --access-logfile, --error-logfile -, --keep-alive, -k sync",
			args: func(r *run) []string {
				return []string{"-k", "sync", "-w", "2", "-b", fmt.Sprintf("127.0.0.1:%d", r.port), "--chdir", td,
					"-p", filepath.Join(r.dir, "hb.pid"), "-n", "hb-gtest", "-e", "GREETING_X=hi there", "--env", "OTHER=1",
					"--access-logfile", filepath.Join(r.dir, "access.log"), "--error-logfile", "-", "--keep-alive", "5",
					"--log-level", "info", "factory_app:create_app('hi', punct='!')"}
			},
			workers: 2,
			check: func(t *testing.T, r *run) {
				if b := body(r.url + "/"); b != "hi!" {
					t.Errorf("GET /: %q, want the factory's \"hi!\"", b)
				}
				if b := body(r.url + "/cwd"); b != td {
					t.Errorf("the worker's cwd is %q, want --chdir's %q", b, td)
				}
				if b := body(r.url + "/env/GREETING_X"); b != "hi there" {
					t.Errorf("GREETING_X in the worker: %q, want \"hi there\" (-e)", b)
				}
				if b := body(r.url + "/env/OTHER"); b != "1" {
					t.Errorf("OTHER in the worker: %q, want \"1\" (--env)", b)
				}
				pidFile := filepath.Join(r.dir, "hb.pid")
				if b, err := os.ReadFile(pidFile); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(r.p.cmd.Process.Pid) {
					t.Errorf("pid file: %q, %v; want %d", b, err, r.p.cmd.Process.Pid)
				}
				if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", r.p.cmd.Process.Pid)); strings.TrimSpace(string(b)) != "hb-gtest" {
					t.Errorf("the server's process name is %q, want -n's hb-gtest", b)
				}
				if !until(5*time.Second, func() bool {
					b, _ := os.ReadFile(filepath.Join(r.dir, "access.log"))
					return strings.Contains(string(b), `"GET /cwd HTTP/1.1" 200`)
				}) {
					t.Errorf("--access-logfile: no line for GET /cwd")
				}
				r.p.cmd.Process.Signal(syscall.SIGTERM)
				if code := r.p.wait(20 * time.Second); code != 0 {
					t.Errorf("exit status %d after SIGTERM", code)
				}
				if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
					t.Errorf("the pid file is still there after exit (%v)", err)
				}
			},
		},
		{
			name: "Heroku-style: WEB_CONCURRENCY sets the workers, PORT gives way to a bind from HORNBEAM_BIND",
			env: func(r *run) []string {
				return []string{"WEB_CONCURRENCY=3", fmt.Sprintf("PORT=%d", freePort(t)), fmt.Sprintf("HORNBEAM_BIND=127.0.0.1:%d", r.port)}
			},
			args:    func(r *run) []string { return []string{"--chdir", td, "factory_app:create_app()"} },
			workers: 3,
			check: func(t *testing.T, r *run) {
				if b := body(r.url + "/"); b != "hello from the factory" {
					t.Errorf("GET /: %q", b)
				}
			},
		},
		{
			name: "GUNICORN_CMD_ARGS: its settings apply, the command line's -b wins",
			env: func(r *run) []string {
				return []string{fmt.Sprintf(`GUNICORN_CMD_ARGS=--workers 3 --bind 127.0.0.1:%d --access-logfile '%s' -e 'FROM_ENV_ARGS=yes it is'`, freePort(t), filepath.Join(r.dir, "a log"))}
			},
			args: func(r *run) []string {
				return []string{"-b", fmt.Sprintf("127.0.0.1:%d", r.port), "--pythonpath", td, "factory_app:create_app()"}
			},
			workers: 3,
			check: func(t *testing.T, r *run) {
				if b := body(r.url + "/env/FROM_ENV_ARGS"); b != "yes it is" {
					t.Errorf("FROM_ENV_ARGS in the worker: %q", b)
				}
				if !until(5*time.Second, func() bool {
					b, _ := os.ReadFile(filepath.Join(r.dir, "a log"))
					return strings.Contains(string(b), "GET /env/FROM_ENV_ARGS")
				}) {
					t.Errorf("GUNICORN_CMD_ARGS' --access-logfile: no line")
				}
			},
		},
		{
			name: "-k gthread --threads",
			args: func(r *run) []string {
				return []string{"-k", "gthread", "--threads", "4", "-w", "1", "-b", fmt.Sprintf("127.0.0.1:%d", r.port), "--pythonpath", td, "factory_app:create_app()"}
			},
			workers: 1,
			check: func(t *testing.T, r *run) {
				if b := body(r.url + "/"); b != "hello from the factory" {
					t.Errorf("GET /: %q", b)
				}
				if !strings.Contains(r.p.stderr.String(), "1 workers") && !strings.Contains(r.p.stderr.String(), "(1 worker") {
					t.Errorf("the banner does not say 1 worker:\n%s", r.p.stderr)
				}
			},
		},
		{
			name: "SCRIPT_NAME mounts the app under a prefix",
			env:  func(r *run) []string { return []string{"SCRIPT_NAME=/pre/"} },
			args: func(r *run) []string {
				return []string{"-w", "1", "-b", fmt.Sprintf("127.0.0.1:%d", r.port), "--pythonpath", td, "factory_app:create_app()"}
			},
			workers: 1,
			check: func(t *testing.T, r *run) {
				if code, b := get(t, nil, r.url+"/pre/where"); code != 200 || b != "/pre|/where" {
					t.Errorf("GET /pre/where: %d %q, want SCRIPT_NAME /pre and PATH_INFO /where", code, b)
				}
				if code, b := get(t, nil, r.url+"/pre"); code != 308 && code != 200 {
					t.Errorf("GET /pre: %d %q", code, b)
				}
				if code, _ := get(t, nil, r.url+"/where"); code != 404 {
					t.Errorf("GET /where (outside SCRIPT_NAME): %d, want 404", code)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &run{dir: t.TempDir(), port: freePort(t)}
			r.url = fmt.Sprintf("http://127.0.0.1:%d", r.port)
			var env []string
			if tt.env != nil {
				env = tt.env(r)
			}
			r.p = startHB(t, env, tt.args(r)...)
			r.p.waitReady(r.p.stderr.String)
			if n := len(workers(r.p.cmd.Process.Pid)); n != tt.workers {
				t.Errorf("%d workers, want %d", n, tt.workers)
			}
			tt.check(t, r)
		})
	}
}

// PORT binds 0.0.0.0:$PORT when nothing else names a bind (checked with
// --print-config: the tests bind loopback only).
func TestPortEnv(t *testing.T) {
	for _, c := range []struct {
		env  []string
		args []string
		want string
	}{
		{[]string{"PORT=5123"}, nil, `bind = ["0.0.0.0:5123"]  # env PORT`},
		{[]string{"PORT=5123"}, []string{"-b", "127.0.0.1:5124"}, `bind = ["127.0.0.1:5124"]  # command line`},
		{[]string{"PORT=5123", "HORNBEAM_BIND=127.0.0.1:5125"}, nil, `bind = ["127.0.0.1:5125"]  # env HORNBEAM_BIND`},
		{[]string{"PORT=5123", "GUNICORN_CMD_ARGS=-b 127.0.0.1:5126"}, nil, `bind = ["127.0.0.1:5126"]  # env GUNICORN_CMD_ARGS`},
		{[]string{"WEB_CONCURRENCY=7"}, nil, `workers = 7  # env WEB_CONCURRENCY`},
		{[]string{"WEB_CONCURRENCY=7"}, []string{"-w", "2"}, `workers = 2  # command line`},
		{[]string{"GUNICORN_CMD_ARGS=-w 5 --keep-alive 9"}, []string{"-w", "2"}, `keepalive = "9s"  # env GUNICORN_CMD_ARGS`},
	} {
		stdout, stderr, code, _ := runHB(t, 10*time.Second, c.env, append(c.args, "--print-config")...)
		if code != 0 || !strings.Contains(stdout, "\n"+c.want+"\n") {
			t.Errorf("%s hornbeam %s --print-config: exit %d, want the line %s:\n%s%s", strings.Join(c.env, " "), strings.Join(c.args, " "), code, c.want, stdout, stderr)
		}
	}
	for _, env := range []string{"PORT=http", "PORT=70000", "WEB_CONCURRENCY=0", "WEB_CONCURRENCY=many"} {
		_, stderr, code, _ := runHB(t, 10*time.Second, []string{env}, "--print-config")
		name, _, _ := strings.Cut(env, "=")
		if ls := lines(stderr); code != 2 || len(ls) != 1 || !strings.Contains(ls[0], name) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and one line naming %s", env, code, stderr, name)
		}
	}
}

// What hornbeam does not do gets one line saying why (and what to use),
// exit status 2; an unknown flag gets a "did you mean".
func TestGunicornRefusals(t *testing.T) {
	needPython(t)
	td := testdata(t)
	bind := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	for _, c := range []struct {
		env  []string
		args []string
		want []string
	}{
		{nil, []string{"--paste", "development.ini"}, []string{"--paste is not supported", "MODULE:CALLABLE"}},
		{nil, []string{"-D"}, []string{"-D/--daemon is not supported", "systemd"}},
		{nil, []string{"--daemon"}, []string{"--daemon is not supported"}},
		{nil, []string{"--worker-tmp-dir", "/dev/shm"}, []string{"--worker-tmp-dir is not supported", "--timeout"}},
		{nil, []string{"--worker-connections", "1000"}, []string{"--worker-connections is not supported", "--threads"}},
		{nil, []string{"--statsd-host", "localhost:8125"}, []string{"--statsd-host is not supported", "/metrics"}},
		{nil, []string{"-k", "gevent"}, []string{"-k gevent", "gthread --threads"}},
		{nil, []string{"-k", "eventlet"}, []string{"-k eventlet", "gthread --threads"}},
		{nil, []string{"-k", "tornado"}, []string{"-k tornado", "Tornado's own server"}},
		{nil, []string{"--acess-logfile", "-"}, []string{"unknown flag: --acess-logfile", "did you mean --access-logfile?"}},
		{nil, []string{"--worker=3"}, []string{"unknown flag: --worker", "did you mean --workers?"}},
		{[]string{"GUNICORN_CMD_ARGS=--daemon"}, nil, []string{"--daemon is not supported"}},
		{[]string{"GUNICORN_CMD_ARGS=--wokers 3"}, nil, []string{"GUNICORN_CMD_ARGS", "did you mean --workers?"}},
		{[]string{"GUNICORN_CMD_ARGS=-n 'x"}, nil, []string{"GUNICORN_CMD_ARGS", "quote"}},
		{nil, []string{"-e", "NOEQUALS"}, []string{"--env", "KEY=VALUE"}},
		{nil, []string{"--chdir", "/nonexistent/dir"}, []string{"--chdir"}},
	} {
		t.Run(strings.Join(append(c.env, c.args...), " "), func(t *testing.T) {
			args := append(append([]string{"-b", bind, "--pythonpath", td}, c.args...), "ok_app")
			stdout, stderr, code, _ := runHB(t, 10*time.Second, c.env, args...)
			if code != 2 || stdout != "" {
				t.Errorf("exit %d, stdout %q; want 2 and nothing", code, stdout)
			}
			ls := lines(stderr)
			if len(ls) != 1 || !strings.HasPrefix(ls[0], "hornbeam: ") {
				t.Fatalf("want one \"hornbeam: \" line; stderr:\n%s", stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(ls[0], w) {
					t.Errorf("the line lacks %q: %s", w, ls[0])
				}
			}
		})
	}
	// A factory whose arguments are not literals: exit 2 before anything runs.
	_, stderr, code, _ := runHB(t, 10*time.Second, nil, "-b", bind, "--pythonpath", td, "factory_app:create_app(os.getcwd())")
	if code != 2 || !strings.Contains(stderr, "literals") {
		t.Errorf("a factory call with a non-literal argument: exit %d, %q", code, stderr)
	}
	// Options with no effect here: one warning each, and it serves.
	port := freePort(t)
	p := startHB(t, nil, "-b", fmt.Sprintf("127.0.0.1:%d", port), "-w", "1", "--capture-output", "-R", "--pythonpath", td, "ok_app")
	p.waitReady(p.stderr.String)
	for _, w := range []string{"--capture-output has no effect", "-R/--enable-stdio-inheritance has no effect"} {
		if !strings.Contains(p.stderr.String(), w) {
			t.Errorf("no warning %q:\n%s", w, p.stderr)
		}
	}
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err != nil {
		t.Errorf("not serving: %v", err)
	} else {
		c.Close()
	}
}

// --check-config imports the app without serving: 0, 1 or 2 as
// hornbeam check.
func TestCheckConfig(t *testing.T) {
	needFlask(t)
	td := testdata(t)
	port := freePort(t)
	b := fmt.Sprintf("127.0.0.1:%d", port)
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"--check-config", "--pythonpath", td, "factory_app:create_app('x')"}, 0},
		{[]string{"--check-config", "--chdir", td, "ok_app"}, 0},
		{[]string{"--check-config", "--pythonpath", td, "broken"}, 1},
		{[]string{"--check-config", "--pythonpath", td, "factory_app:returns_none()"}, 1},
		{[]string{"--check-config", "--pythonpath", td, "factory_app:create_app(1, 2, 3)"}, 1},
		{[]string{"--check-config", "--timeout", "soon", "ok_app"}, 2},
	} {
		_, stderr, code, _ := runHB(t, 30*time.Second, nil, append([]string{"-b", b}, c.args...)...)
		if code != c.code {
			t.Errorf("hornbeam %s: exit %d, want %d\n%s", strings.Join(c.args, " "), code, c.code, stderr)
		}
		if c, err := net.DialTimeout("tcp", b, 200*time.Millisecond); err == nil {
			c.Close()
			t.Errorf("--check-config listened on %s", b)
		}
	}
}
