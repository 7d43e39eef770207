package main

// The gunicorn command lines of Flask's and Django's deployment docs, with
// the word gunicorn replaced by hornbeam, run against the apps those docs
// describe (Flask's hello.py, a project from django-admin startproject),
// from the directory the docs run them in. The docs bind 127.0.0.1:8000
// (or 0.0.0.0); the tests bind a free loopback port through
// GUNICORN_CMD_ARGS, so that the command line stays the docs' own.
//
// Flask: https://flask.palletsprojects.com/en/stable/deploying/gunicorn/
// Django: https://docs.djangoproject.com/en/stable/howto/deployment/wsgi/gunicorn/

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startHBIn is startHB with the working directory dir: hornbeam
// --python /usr/bin/python3 ARGS, killed with its workers at the end.
func startHBIn(t *testing.T, dir string, env []string, args ...string) *hbProc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	cmd := exec.CommandContext(ctx, hornbeamBin, append([]string{"--python", python}, args...)...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "HORNBEAM_") || strings.HasPrefix(kv, "TMPDIR=") || gunicornEnv(kv) || strings.HasPrefix(kv, "DJANGO_SETTINGS_MODULE=") {
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	cmd.Env = append(append(cmd.Env, "TMPDIR="+t.TempDir()), env...)
	p := &hbProc{t: t, cmd: cmd, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{}), seen: map[int]bool{}}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	cmd.WaitDelay = 2 * time.Second
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting %s: %v", hornbeamBin, err)
	}
	go func() {
		cmd.Wait()
		p.ended = time.Now()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		cancel()
		if t.Failed() {
			t.Logf("(in %s) %s hornbeam --python %s %s\nstdout:\n%s\nstderr:\n%s", dir, strings.Join(env, " "), python, strings.Join(args, " "), p.stdout, p.stderr)
		}
	})
	return p
}

// Flask's "Deploying to Production: Gunicorn" page: its hello.py and its
// four command lines.
func TestFlaskDocsGunicornExamples(t *testing.T) {
	needFlask(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "hello.py"), `from flask import Flask


def create_app():
    app = Flask(__name__)

    @app.route("/")
    def hello():
        return "Hello, World!"

    return app


app = create_app()
`)
	for _, c := range []struct {
		docs string // the docs' command, gunicorn replaced by hornbeam
		args []string
	}{
		{"hornbeam -w 4 'hello:create_app()'", []string{"-w", "4", "hello:create_app()"}},
		{"hornbeam -w 4 'hello:app'", []string{"-w", "4", "hello:app"}},
	} {
		t.Run(c.docs, func(t *testing.T) {
			port := freePort(t)
			p := startHBIn(t, dir, []string{fmt.Sprintf("GUNICORN_CMD_ARGS=--bind 127.0.0.1:%d", port)}, c.args...)
			p.waitReady(p.stderr.String)
			if b := body(fmt.Sprintf("http://127.0.0.1:%d/", port)); b != "Hello, World!" {
				t.Errorf("GET /: %q, want Flask's Hello, World!", b)
			}
			if n := len(workers(p.cmd.Process.Pid)); n != 4 {
				t.Errorf("%d workers, want -w 4", n)
			}
			p.cmd.Process.Signal(syscall.SIGTERM)
			if code := p.wait(30 * time.Second); code != 0 {
				t.Errorf("exit %d after SIGTERM", code)
			}
		})
	}
	// "Binding Externally": -b 0.0.0.0 is port 8000 on every interface
	// (checked without serving: the tests bind loopback only).
	stdout, stderr, code := runIn(t, dir, nil, "-w", "4", "-b", "0.0.0.0", "hello:create_app()", "--print-config")
	if code != 0 || !strings.Contains(stdout, "\nbind = [\"0.0.0.0:8000\"]  # command line\n") || !strings.Contains(stdout, "\nworkers = 4  # command line\n") {
		t.Errorf("hornbeam -w 4 -b 0.0.0.0 'hello:create_app()' --print-config: exit %d\n%s%s", code, stdout, stderr)
	}
	// "Async with gevent": one line saying what to use instead.
	_, stderr, code = runIn(t, dir, nil, "-k", "gevent", "hello:create_app()")
	if ls := lines(stderr); code != 2 || len(ls) != 1 || !strings.Contains(ls[0], "-k gevent") || !strings.Contains(ls[0], "gthread --threads") {
		t.Errorf("hornbeam -k gevent 'hello:create_app()': exit %d, %q", code, stderr)
	}
}

// Django's "How to use Django with Gunicorn": `gunicorn myproject.wsgi`
// run from the directory of manage.py, in a project made by
// django-admin startproject.
func TestDjangoDocsGunicornExample(t *testing.T) {
	needPython(t)
	if _, err := os.Stat("/usr/lib/python3/dist-packages/django"); err != nil {
		t.Skip("python3-django is not installed")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, python, "-m", "django", "startproject", "myproject", dir).CombinedOutput(); err != nil {
		t.Fatalf("django-admin startproject: %v\n%s", err, out)
	}
	for _, c := range []struct {
		docs string
		args []string
	}{
		{"hornbeam myproject.wsgi", []string{"myproject.wsgi"}},
		// The docs' older form, and the -e gunicorn spelling of it.
		{"hornbeam --env DJANGO_SETTINGS_MODULE=myproject.settings myproject.wsgi", []string{"--env", "DJANGO_SETTINGS_MODULE=myproject.settings", "myproject.wsgi"}},
	} {
		t.Run(c.docs, func(t *testing.T) {
			port := freePort(t)
			p := startHBIn(t, dir, []string{fmt.Sprintf("GUNICORN_CMD_ARGS=--bind 127.0.0.1:%d", port)}, c.args...)
			p.waitReady(p.stderr.String)
			url := fmt.Sprintf("http://127.0.0.1:%d", port)
			if code, b := get(t, nil, url+"/"); code != 200 || !strings.Contains(b, "The install worked successfully!") {
				t.Errorf("GET /: %d, want Django's welcome page:\n%.300s", code, b)
			}
			client := noRedirects()
			if code, _ := get(t, client, url+"/admin/"); code != 302 {
				t.Errorf("GET /admin/: %d, want the admin's 302 to its login page", code)
			}
			p.cmd.Process.Signal(syscall.SIGTERM)
			if code := p.wait(30 * time.Second); code != 0 {
				t.Errorf("exit %d after SIGTERM", code)
			}
		})
	}
}

// noRedirects is a client that returns redirects as they come.
func noRedirects() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}
