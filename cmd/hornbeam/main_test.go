package main

// These tests build the hornbeam command once (TestMain) and run it as a real
// process, the way a user does: flags, environment variables, exit statuses,
// what it prints, signals, and requests over TCP and unix sockets.

import (
	"bytes"
	"context"
	"fmt"
	"github.com/hornbeam-go/hornbeam/internal/testutil"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hornbeam-go/hornbeam"
)

// python is the interpreter every run uses: Debian's, never a pyenv python3
// that may come first on PATH.
const python = "/usr/bin/python3"

// hornbeamBin is the command built by TestMain.
var hornbeamBin string

func TestMain(m *testing.M) {
	os.Exit(testutil.RunWithHornbeam(m, ".", &hornbeamBin))
}

// syncBuffer is safe for the server's concurrent writes.
type syncBuffer = testutil.SyncBuffer

func needPython(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(python); err != nil {
		t.Skipf("%s is not installed", python)
	}
}

// testdata is the absolute path of testdata/, passed as --pythonpath.
func testdata(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// freePort returns a loopback port nothing listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// hbProc is one running hornbeam process.
type hbProc struct {
	t       *testing.T
	cmd     *exec.Cmd
	stdout  *syncBuffer
	stderr  *syncBuffer
	done    chan struct{} // closed once the process has been waited for
	started time.Time
	ended   time.Time
	seen    map[int]bool // worker pids seen while it ran
}

// startHB starts hornbeam --python /usr/bin/python3 ARGS with env added to
// a copy of this process's environment without any HORNBEAM_ variable. The
// process, and the Python workers it started, are killed when the test ends.
func startHB(t *testing.T, env []string, args ...string) *hbProc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	cmd := exec.CommandContext(ctx, hornbeamBin, append([]string{"--python", python}, args...)...)
	// TMPDIR: the server unpacks its Python runtime there; a killed server
	// leaves it behind, so keep it inside the test's directory.
	tmp := t.TempDir()
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "HORNBEAM_") || strings.HasPrefix(kv, "TMPDIR=") || gunicornEnv(kv) {
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	cmd.Env = append(append(cmd.Env, "TMPDIR="+tmp), env...)
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
			t.Logf("%s hornbeam --python %s %s\nstdout:\n%s\nstderr:\n%s", strings.Join(env, " "), python, strings.Join(args, " "), p.stdout, p.stderr)
		}
	})
	return p
}

// kill kills the server and whatever workers of it are still running.
func (p *hbProc) kill() {
	select {
	case <-p.done:
	default:
		for _, pid := range children(p.cmd.Process.Pid) {
			p.seen[pid] = true
		}
		p.cmd.Process.Kill()
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			p.t.Errorf("hornbeam (pid %d) did not die after SIGKILL", p.cmd.Process.Pid)
		}
	}
	for pid := range p.seen {
		if isWorker(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// exited reports whether the process has ended.
func (p *hbProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits up to d for the process to end and returns its exit status.
func (p *hbProc) wait(d time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		p.t.Fatalf("hornbeam still running after %s\nstdout:\n%s\nstderr:\n%s", d, p.stdout, p.stderr)
	}
	return p.cmd.ProcessState.ExitCode()
}

// waitReady waits until log() holds the "listening on" line, and fails the
// test if the process ends first.
func (p *hbProc) waitReady(log func() string) {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(log(), " listening on ") {
		if p.exited() {
			p.t.Fatalf("hornbeam exited with status %d before it was ready\nstdout:\n%s\nstderr:\n%s", p.cmd.ProcessState.ExitCode(), p.stdout, p.stderr)
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("hornbeam not ready after 20s\nstdout:\n%s\nstderr:\n%s", p.stdout, p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, pid := range children(p.cmd.Process.Pid) {
		p.seen[pid] = true
	}
}

// runHB runs hornbeam to completion (at most d) and returns its output,
// exit status and run time.
func runHB(t *testing.T, d time.Duration, env []string, args ...string) (stdout, stderr string, code int, took time.Duration) {
	t.Helper()
	p := startHB(t, env, args...)
	code = p.wait(d)
	return p.stdout.String(), p.stderr.String(), code, p.ended.Sub(p.started)
}

// children returns the pids of pid's descendants: its child processes (the
// zygote), theirs (the workers it forks), and so on.
func children(pid int) []int {
	var out []int
	for _, c := range directChildren(pid) {
		out = append(append(out, c), children(c)...)
	}
	return out
}

// directChildren returns the pids of pid's child processes (from /proc/*/stat).
func directChildren(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		cpid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil && ppid == pid {
			out = append(out, cpid)
		}
	}
	return out
}

// isWorker reports whether pid is a live hornbeam Python worker.
func isWorker(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	if st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		if s := string(st); strings.Contains(s[strings.LastIndexByte(s, ')')+1:], " Z ") {
			return false // a zombie: already dead
		}
	}
	return bytes.Contains(b, []byte("hornbeam._worker"))
}

// workers returns the live Python worker processes of pid: those forked by
// its zygote, its child.
func workers(pid int) []int {
	var out []int
	for _, z := range directChildren(pid) {
		for _, c := range directChildren(z) {
			if isWorker(c) {
				out = append(out, c)
			}
		}
	}
	return out
}

// lines splits s into its non-empty lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// logLine is a line of the error log: time stamp, level, message.
var logLine = regexp.MustCompile(`^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) \[(DEBUG|INFO|WARNING|ERROR)\] (.*)$`)

// noGoCrash fails the test if stderr looks like a Go panic or stack dump.
func noGoCrash(t *testing.T, stderr string) {
	t.Helper()
	for _, bad := range []string{"goroutine ", "panic:", "runtime error"} {
		if strings.Contains(stderr, bad) {
			t.Errorf("stderr holds %q, a Go crash instead of a message:\n%s", bad, stderr)
		}
	}
}

// get fetches url with a bounded client and returns status and body.
func get(t *testing.T, client *http.Client, url string) (int, string) {
	t.Helper()
	if client == nil {
		client = &http.Client{Timeout: 15 * time.Second}
	}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// --- 1. --version and --help ----------------------------------------------

func TestVersion(t *testing.T) {
	stdout, stderr, code, _ := runHB(t, 10*time.Second, nil, "--version")
	if code != 0 {
		t.Errorf("--version: exit status %d, want 0 (stderr: %s)", code, stderr)
	}
	if want := "hornbeam " + hornbeam.Version + "\n"; stdout != want {
		t.Errorf("--version printed %q, want %q", stdout, want)
	}
	if !regexp.MustCompile(`^hornbeam \d+\.\d+\.\d+\S*\n$`).MatchString(stdout) {
		t.Errorf("--version printed %q, want \"hornbeam X.Y.Z\"", stdout)
	}
}

// --help, -h and `hornbeam help` print the help on stdout and exit 0.
func TestHelp(t *testing.T) {
	for _, arg := range []string{"--help", "-h", "help"} {
		t.Run(arg, func(t *testing.T) {
			stdout, stderr, code, _ := runHB(t, 10*time.Second, nil, arg)
			if code != 0 {
				t.Errorf("%s: exit status %d, want 0", arg, code)
			}
			if stderr != "" {
				t.Errorf("%s wrote to stderr (the help belongs on stdout):\n%s", arg, stderr)
			}
			out := stdout
			for _, flag := range []string{
				"-b, --bind", "-w, --workers", "-k, --worker-class", "--threads", "-t, --timeout",
				"--max-requests ", "--max-requests-jitter", "--keepalive", "--pythonpath", "--preload",
				"--python ", "--venv", "--certfile", "--keyfile", "--access-log", "--error-log",
				"--graceful-timeout", "--version", "HORNBEAM_", "MODULE:CALLABLE", "--log-level", "Exit status",
			} {
				if !strings.Contains(out, flag) {
					t.Errorf("%s output does not mention %q:\n%s", arg, flag, out)
				}
			}
			noGoCrash(t, stderr)
		})
	}
}

// --- 2-5. Start-up errors: one clear line, non-zero exit ---------------------

func TestStartupErrors(t *testing.T) {
	needPython(t)
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	heldAddr := held.Addr().String()
	bind := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	td := testdata(t)
	tests := []struct {
		name string
		args []string
		code int      // 2: usage, a plain "hornbeam: " line; 1: run time, an [ERROR] log line
		want []string // every one must be in the single line printed
	}{
		{"asgi in the process mode", []string{"-b", bind, "-k", "asgi", "--worker-mode", "process", "app:application"}, 2, []string{"asgi runs only in the embedded worker mode"}},
		{"spec with spaces", []string{"-b", bind, "--pythonpath", td, "not a spec!"}, 2, []string{"not a spec!", "MODULE:CALLABLE"}},
		{"spec with two colons", []string{"-b", bind, "--pythonpath", td, "a:b:c"}, 2, []string{"a:b:c", "MODULE:CALLABLE"}},
		{"spec without module", []string{"-b", bind, "--pythonpath", td, ":x"}, 2, []string{`":x"`, "MODULE:CALLABLE"}},
		{"missing interpreter", []string{"--python", "/nonexistent/python3", "-b", bind, "--pythonpath", td, "ok_app:application"}, 1, []string{"/nonexistent/python3", "--python"}},
		{"port in use", []string{"-b", heldAddr, "--pythonpath", td, "ok_app:application"}, 1, []string{"already in use", heldAddr}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code, took := runHB(t, 15*time.Second, nil, tt.args...)
			if code != tt.code {
				t.Errorf("exit status %d, want %d", code, tt.code)
			}
			if took > 5*time.Second {
				t.Errorf("took %s to fail, want a prompt exit", took)
			}
			noGoCrash(t, stderr)
			ls := lines(stderr)
			if len(ls) != 1 {
				t.Fatalf("stderr has %d lines, want exactly one:\n%s", len(ls), stderr)
			}
			if tt.code == 2 && !strings.HasPrefix(ls[0], "hornbeam: ") {
				t.Errorf("message %q does not start with \"hornbeam: \"", ls[0])
			}
			if m := logLine.FindStringSubmatch(ls[0]); tt.code == 1 && (m == nil || m[2] != "ERROR") {
				t.Errorf("message %q is not an [ERROR] line of the error log", ls[0])
			}
			for _, w := range tt.want {
				if !strings.Contains(ls[0], w) {
					t.Errorf("message %q does not contain %q", ls[0], w)
				}
			}
			if strings.Contains(stdout, "listening on") {
				t.Errorf("stdout says it is listening:\n%s", stdout)
			}
		})
	}
}

// --- 6. Apps that cannot be imported ------------------------------------------

func TestAppImportFailures(t *testing.T) {
	needPython(t)
	td := testdata(t)
	tests := []struct {
		name     string
		app      string
		want     []string // in stderr
		wantLast []string // in the final "hornbeam:" message
		hint     bool     // one "hint:" line mentioning --python (only for a missing module)
	}{
		{"syntax error", "broken", []string{"Traceback (most recent call last)", "broken.py", "SyntaxError"}, []string{"SyntaxError"}, false},
		{"missing dependency", "missing_dep:application", []string{"Traceback (most recent call last)", "missing_dep.py", "ModuleNotFoundError", "no_such_module_xyz"}, []string{"ModuleNotFoundError"}, true},
		{"missing app module", "no_such_app_xyz", []string{"ModuleNotFoundError", "no_such_app_xyz"}, []string{"ModuleNotFoundError"}, true},
		{"name not in a module", "bad_name", []string{"ImportError", "no_such_name_xyz"}, []string{"ImportError"}, false},
		{"missing attribute", "ok_app:nope", []string{"nope"}, []string{"nope"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bind := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			// Two workers: both fail; the server must give up, not restart them.
			_, stderr, code, took := runHB(t, 20*time.Second, nil, "-b", bind, "-w", "2", "--pythonpath", td, tt.app)
			if code != 1 {
				t.Errorf("exit status %d, want 1", code)
			}
			if took > 8*time.Second {
				t.Errorf("took %s to give up, want a few seconds", took)
			}
			noGoCrash(t, stderr)
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not contain %q:\n%s", w, stderr)
				}
			}
			var last string
			for _, l := range lines(stderr) {
				if m := logLine.FindStringSubmatch(l); m != nil && m[2] == "ERROR" && !strings.HasPrefix(m[3], "hint:") {
					last = l
				}
			}
			if last == "" {
				t.Fatalf("no [ERROR] message in stderr:\n%s", stderr)
			}
			for _, w := range tt.wantLast {
				if !strings.Contains(last, w) {
					t.Errorf("final message %q does not contain %q", last, w)
				}
			}
			hints := 0
			for _, l := range lines(stderr) {
				if i := strings.Index(l, "hint:"); i >= 0 && strings.Contains(l[i:], "--python") {
					hints++
				}
			}
			if want := map[bool]int{true: 1, false: 0}[tt.hint]; hints != want {
				t.Errorf("%d \"hint:\" lines mentioning --python in stderr, want %d:\n%s", hints, want, stderr)
			}
			if strings.Contains(stderr, "listening on") {
				t.Errorf("the server said it was listening although the app cannot load")
			}
		})
	}
}

// The error log moved to a file: the traceback still reaches the terminal.
func TestAppImportFailureWithErrorLogFile(t *testing.T) {
	needPython(t)
	logFile := filepath.Join(t.TempDir(), "error.log")
	bind := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	_, stderr, code, _ := runHB(t, 20*time.Second, nil, "-b", bind, "-w", "1", "--pythonpath", testdata(t), "--error-log", logFile, "missing_dep")
	if code == 0 {
		t.Errorf("exit status 0, want non-zero")
	}
	for _, w := range []string{"Traceback (most recent call last)", "ModuleNotFoundError: No module named 'no_such_module_xyz'", "hint:", "hornbeam: cannot load the app"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr does not contain %q:\n%s", w, stderr)
		}
	}
	b, _ := os.ReadFile(logFile)
	for _, w := range []string{"ModuleNotFoundError", "[ERROR] cannot load the app"} {
		if !strings.Contains(string(b), w) {
			t.Errorf("error log file does not hold %q:\n%s", w, b)
		}
	}
	if n, m := strings.Count(stderr, "hint:"), strings.Count(string(b), "hint:"); n != 1 || m != 1 {
		t.Errorf("the hint is on stderr %d times and in the file %d times, want once each", n, m)
	}
}

// --- 7. Environment variables -------------------------------------------------

func TestEnvWorkersAndBind(t *testing.T) {
	needPython(t)
	td := testdata(t)
	tests := []struct {
		name    string
		env     func(envPort int) []string
		args    func(flagPort int) []string
		serveOn string // "env" or "flag": which port must serve
		workers int
	}{
		{
			name: "env only",
			env: func(p int) []string {
				return []string{"HORNBEAM_WORKERS=3", fmt.Sprintf("HORNBEAM_BIND=127.0.0.1:%d", p)}
			},
			args:    func(int) []string { return nil },
			serveOn: "env", workers: 3,
		},
		{
			name: "-w beats HORNBEAM_WORKERS",
			env: func(p int) []string {
				return []string{"HORNBEAM_WORKERS=3", fmt.Sprintf("HORNBEAM_BIND=127.0.0.1:%d", p)}
			},
			args:    func(int) []string { return []string{"-w", "1"} },
			serveOn: "env", workers: 1,
		},
		{
			name: "-b beats HORNBEAM_BIND",
			env: func(p int) []string {
				return []string{"HORNBEAM_WORKERS=2", fmt.Sprintf("HORNBEAM_BIND=127.0.0.1:%d", p)}
			},
			args:    func(p int) []string { return []string{"-b", fmt.Sprintf("127.0.0.1:%d", p)} },
			serveOn: "flag", workers: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			envPort, flagPort := freePort(t), freePort(t)
			for flagPort == envPort {
				flagPort = freePort(t)
			}
			args := append(tt.args(flagPort), "--pythonpath", td, "ok_app")
			p := startHB(t, tt.env(envPort), args...)
			p.waitReady(p.stderr.String)
			pid := p.cmd.Process.Pid
			if want := fmt.Sprintf("(%d workers,", tt.workers); !strings.Contains(p.stderr.String(), want) {
				t.Errorf("the \"listening on\" line does not say %q:\n%s", want, p.stderr)
			}
			if got := workers(pid); len(got) != tt.workers {
				t.Errorf("%d Python worker processes (%v), want %d", len(got), got, tt.workers)
			}
			servePort, idlePort := envPort, flagPort
			if tt.serveOn == "flag" {
				servePort, idlePort = flagPort, envPort
			}
			code, body := get(t, nil, fmt.Sprintf("http://127.0.0.1:%d/pid", servePort))
			if code != 200 {
				t.Fatalf("GET /pid: status %d, body %q", code, body)
			}
			wpid, err := strconv.Atoi(body)
			if err != nil {
				t.Fatalf("GET /pid: body %q is not a pid", body)
			}
			ok := false
			for _, c := range workers(pid) {
				ok = ok || c == wpid
			}
			if !ok {
				t.Errorf("the request was served by pid %d, not by a worker of hornbeam (pid %d)", wpid, pid)
			}
			if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", idlePort), time.Second); err == nil {
				c.Close()
				t.Errorf("hornbeam also listens on port %d, which the overridden setting named", idlePort)
			}
		})
	}
}

// -w 0 has no documented meaning: hornbeam may refuse it or run some
// workers, but the "listening on" line must not claim a number of workers
// other than the number running.
func TestZeroWorkersNotMisreported(t *testing.T) {
	needPython(t)
	for _, tt := range []struct {
		name string
		env  []string
		args []string
	}{
		{"-w 0", nil, []string{"-w", "0"}},
		{"HORNBEAM_WORKERS=0", []string{"HORNBEAM_WORKERS=0"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append(append([]string{"-b", fmt.Sprintf("127.0.0.1:%d", freePort(t))}, tt.args...), "--pythonpath", testdata(t), "ok_app")
			p := startHB(t, tt.env, args...)
			deadline := time.Now().Add(20 * time.Second)
			for !p.exited() && !strings.Contains(p.stderr.String(), " listening on ") {
				if time.Now().After(deadline) {
					t.Fatalf("neither ready nor exited after 20s")
				}
				time.Sleep(20 * time.Millisecond)
			}
			if p.exited() {
				stderr := p.stderr.String()
				if code := p.cmd.ProcessState.ExitCode(); code == 0 {
					t.Errorf("exited 0 without serving")
				}
				noGoCrash(t, stderr)
				if ls := lines(stderr); len(ls) != 1 || !strings.Contains(ls[0], "workers") {
					t.Errorf("refused, but not with one line naming the workers setting:\n%s", stderr)
				}
				return
			}
			m := regexp.MustCompile(`\((\d+) workers,`).FindStringSubmatch(p.stderr.String())
			if m == nil {
				t.Fatalf("no worker count in the \"listening on\" line:\n%s", p.stderr)
			}
			if got := workers(p.cmd.Process.Pid); strconv.Itoa(len(got)) != m[1] {
				t.Errorf("the \"listening on\" line says %s workers, but %d Python workers run (%v)", m[1], len(got), got)
			}
		})
	}
}

func TestEnvInvalidValue(t *testing.T) {
	tests := []struct {
		env  string
		name string
	}{
		{"HORNBEAM_TIMEOUT=bogus", "HORNBEAM_TIMEOUT"},
		{"HORNBEAM_WORKERS=many", "HORNBEAM_WORKERS"},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			bind := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			_, stderr, code, _ := runHB(t, 10*time.Second, []string{tt.env}, "-b", bind, "--pythonpath", testdata(t), "ok_app")
			if code != 2 {
				t.Errorf("exit status %d, want 2", code)
			}
			noGoCrash(t, stderr)
			ls := lines(stderr)
			if len(ls) != 1 || !strings.Contains(ls[0], tt.name) {
				t.Errorf("want one line naming %s; stderr:\n%s", tt.name, stderr)
			}
		})
	}
}

// --- 8. --timeout ---------------------------------------------------------------

func TestTimeoutGives504(t *testing.T) {
	needPython(t)
	port := freePort(t)
	p := startHB(t, nil, "-b", fmt.Sprintf("127.0.0.1:%d", port), "-w", "1", "--timeout", "1", "--pythonpath", testdata(t), "ok_app")
	p.waitReady(p.stderr.String)
	start := time.Now()
	code, body := get(t, nil, fmt.Sprintf("http://127.0.0.1:%d/sleep?s=3", port))
	took := time.Since(start)
	if code != http.StatusGatewayTimeout {
		t.Errorf("status %d (body %q), want 504", code, body)
	}
	if took < 900*time.Millisecond || took > 2500*time.Millisecond {
		t.Errorf("the 504 came after %s, want about 1s (--timeout 1 is one second)", took)
	}
	// The server keeps serving: a replacement worker answers.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body = get(t, nil, fmt.Sprintf("http://127.0.0.1:%d/hello", port))
		if code == 200 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code != 200 || body != "hello from ok_app" {
		t.Errorf("after the timeout: status %d, body %q; want 200 from a new worker", code, body)
	}
}

// --- 9. SIGTERM and SIGINT -------------------------------------------------------------------

// SIGTERM (and SIGINT, Ctrl-C) stop the server gracefully: the request in
// flight finishes, the process exits 0, the port is closed, the workers gone.
func TestGracefulShutdown(t *testing.T) {
	needPython(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) { testGracefulShutdown(t, sig) })
	}
}

func testGracefulShutdown(t *testing.T, sig syscall.Signal) {
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p := startHB(t, nil, "-b", addr, "-w", "1", "--pythonpath", testdata(t), "ok_app")
	p.waitReady(p.stderr.String)
	ws := workers(p.cmd.Process.Pid)
	if len(ws) != 1 {
		t.Fatalf("%d workers, want 1", len(ws))
	}

	type result struct {
		code int
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := (&http.Client{Timeout: 15 * time.Second}).Get("http://" + addr + "/sleep?s=1.5")
		if err != nil {
			res <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		res <- result{resp.StatusCode, string(b), err}
	}()
	sent := time.Now()
	// Signal once the app runs the request (it says so in the error log),
	// and no sooner than 300 ms after it was sent.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.stderr.String(), "ok_app: sleeping 1.5") {
		if time.Now().After(deadline) {
			t.Fatalf("the request never reached the app")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(time.Until(sent.Add(300 * time.Millisecond)))
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	r := <-res
	if r.err != nil {
		t.Fatalf("the in-flight request failed: %v", r.err)
	}
	if r.code != 200 || r.body != "slept 1.5" {
		t.Errorf("the in-flight request got %d %q, want 200 \"slept 1.5\"", r.code, r.body)
	}
	if code := p.wait(10 * time.Second); code != 0 {
		t.Errorf("exit status %d after %s, want 0", code, sig)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after hornbeam exited", addr)
	}
	deadline = time.Now().Add(2 * time.Second)
	for isWorker(ws[0]) {
		if time.Now().After(deadline) {
			t.Errorf("worker %d still runs after hornbeam exited", ws[0])
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// --- 10. Logs ----------------------------------------------------------------------

func TestAccessLogAndErrorLogFile(t *testing.T) {
	needPython(t)
	port := freePort(t)
	logFile := filepath.Join(t.TempDir(), "error.log")
	p := startHB(t, nil, "-b", fmt.Sprintf("127.0.0.1:%d", port), "-w", "1", "--pythonpath", testdata(t),
		"--access-log", "-", "--error-log", logFile, "ok_app")
	readLog := func() string { b, _ := os.ReadFile(logFile); return string(b) }
	p.waitReady(readLog)

	code, body := get(t, nil, fmt.Sprintf("http://127.0.0.1:%d/access-check?x=1", port))
	if code != 200 {
		t.Fatalf("status %d, body %q", code, body)
	}
	lineRE := regexp.MustCompile(`"GET /access-check\?x=1 HTTP/1\.1" 200 `)
	deadline := time.Now().Add(3 * time.Second)
	for !lineRE.MatchString(p.stdout.String()) {
		if time.Now().After(deadline) {
			t.Errorf("no access log line with GET /access-check?x=1 and 200 on stdout:\n%s", p.stdout)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}

	errLog := readLog()
	for _, w := range []string{fmt.Sprintf("listening on http://127.0.0.1:%d", port), "ok_app: imported in pid"} {
		if !strings.Contains(errLog, w) {
			t.Errorf("error log file does not contain %q:\n%s", w, errLog)
		}
	}
	for _, w := range []string{"listening on", "ok_app: imported"} {
		if strings.Contains(p.stderr.String(), w) {
			t.Errorf("stderr contains %q although --error-log names a file:\n%s", w, p.stderr)
		}
	}
	if strings.Contains(p.stdout.String(), "listening on") {
		t.Errorf("stdout (the access log) contains the error log:\n%s", p.stdout)
	}
}

// --- 11. Unix socket ---------------------------------------------------------------

func TestUnixSocket(t *testing.T) {
	needPython(t)
	sock := filepath.Join(t.TempDir(), "hb.sock")
	p := startHB(t, nil, "-b", "unix:"+sock, "-w", "1", "--pythonpath", testdata(t), "ok_app")
	p.waitReady(p.stderr.String)
	if !strings.Contains(p.stderr.String(), "listening on unix://"+sock) {
		t.Errorf("no \"listening on unix://%s\" line:\n%s", sock, p.stderr)
	}
	client := &http.Client{
		Timeout: 15 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}},
	}
	defer client.CloseIdleConnections()
	code, body := get(t, client, "http://hornbeam/hello")
	if code != 200 || body != "hello from ok_app" {
		t.Errorf("over %s: status %d, body %q; want 200 \"hello from ok_app\"", sock, code, body)
	}
}
