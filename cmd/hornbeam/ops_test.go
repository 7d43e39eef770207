package main

// Operations: signals (SIGHUP reload, SIGTTIN/SIGTTOU scaling, SIGUSR2
// binary upgrade), socket activation, the config file, `hornbeam check`,
// --reload, --umask and --health-path, each against the real binary.

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// until polls cond every 50ms for up to d.
func until(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return cond()
}

// body GETs url, returning "" on any error.
func body(url string) string {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b := make([]byte, 4096)
	n, _ := resp.Body.Read(b)
	return string(b[:n])
}

// versionedApp writes deployed.py answering v into dir.
func versionedApp(t *testing.T, dir, v string) {
	t.Helper()
	src := fmt.Sprintf("def application(environ, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [b'%s']\n", v)
	if err := os.WriteFile(filepath.Join(dir, "deployed.py"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(dir, "__pycache__"))
}

func TestSIGHUPReload(t *testing.T) {
	needPython(t)
	dir := t.TempDir()
	versionedApp(t, dir, "v1")
	port := freePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	p := startHB(t, nil, "-b", fmt.Sprintf("127.0.0.1:%d", port), "-w", "2", "--pythonpath", dir, "deployed")
	p.waitReady(p.stderr.String)
	if got := body(url); got != "v1" {
		t.Fatalf("before: %q", got)
	}
	versionedApp(t, dir, "v2")
	p.cmd.Process.Signal(syscall.SIGHUP)
	if !until(15*time.Second, func() bool { return body(url) == "v2" }) {
		t.Fatalf("SIGHUP did not bring in the new code")
	}
	if !until(10*time.Second, func() bool { return strings.Contains(p.stderr.String(), "reloaded: 2 workers") }) {
		t.Errorf("no reload message in the log")
	}
}

func statsWorkers(t *testing.T, addr string) int {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/stats")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var st struct {
		Workers []struct{ PID int }
	}
	json.NewDecoder(resp.Body).Decode(&st)
	return len(st.Workers)
}

func TestSIGTTINAndSIGTTOU(t *testing.T) {
	needPython(t)
	port, sport := freePort(t), freePort(t)
	saddr := fmt.Sprintf("127.0.0.1:%d", sport)
	p := startHB(t, nil, "-b", fmt.Sprintf("127.0.0.1:%d", port), "-w", "2", "--stats-bind", saddr, "--pythonpath", testdata(t), "ok_app")
	p.waitReady(p.stderr.String)
	p.cmd.Process.Signal(syscall.SIGTTIN)
	if !until(10*time.Second, func() bool { return statsWorkers(t, saddr) == 3 }) {
		t.Fatalf("SIGTTIN: %d workers in stats, want 3", statsWorkers(t, saddr))
	}
	p.cmd.Process.Signal(syscall.SIGTTOU)
	time.Sleep(300 * time.Millisecond)
	p.cmd.Process.Signal(syscall.SIGTTOU)
	if !until(10*time.Second, func() bool { return statsWorkers(t, saddr) == 1 }) {
		t.Fatalf("2 × SIGTTOU: %d workers in stats, want 1", statsWorkers(t, saddr))
	}
	if !strings.Contains(p.stderr.String(), "scaling down") {
		t.Errorf("the log does not give the reason for retiring workers")
	}
	// The signals by their names, not by their String() ("stopped (tty input)").
	for _, w := range []string{"SIGTTIN: 3 workers wanted", "SIGTTOU: 2 workers wanted", "SIGTTOU: 1 workers wanted"} {
		if !strings.Contains(p.stderr.String(), w) {
			t.Errorf("no %q in the log:\n%s", w, p.stderr)
		}
	}
	if strings.Contains(p.stderr.String(), "stopped (tty") {
		t.Errorf("the log names a signal by its description:\n%s", p.stderr)
	}
}

func TestSIGUSR2BinaryUpgrade(t *testing.T) {
	needPython(t)
	port := freePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/pid", port)
	p := startHB(t, nil, "-b", fmt.Sprintf("127.0.0.1:%d", port), "-w", "1", "--pythonpath", testdata(t), "ok_app")
	p.waitReady(p.stderr.String)
	p.cmd.Process.Signal(syscall.SIGUSR2)
	var newPID int
	if !until(15*time.Second, func() bool {
		for _, l := range lines(p.stderr.String()) {
			if i := strings.Index(l, "started a new hornbeam (pid "); i >= 0 {
				fmt.Sscanf(l[i+len("started a new hornbeam (pid "):], "%d", &newPID)
			}
		}
		return newPID > 0
	}) {
		t.Fatal("no new process after SIGUSR2")
	}
	t.Cleanup(func() {
		for _, pid := range children(newPID) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		syscall.Kill(newPID, syscall.SIGKILL)
	})
	// The new process is serving on the inherited socket once it has two
	// "listening" lines in the shared stderr; then the old one can go.
	if !until(20*time.Second, func() bool { return strings.Count(p.stderr.String(), " listening on ") >= 2 }) {
		t.Fatalf("the new process did not start serving")
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(15 * time.Second); code != 0 {
		t.Errorf("old process exit status %d", code)
	}
	// The port still answers, from the new process's workers.
	for i := 0; i < 5; i++ {
		if b := body(url); b == "" {
			t.Fatalf("request %d after the old process left: no answer", i)
		}
	}
	if syscall.Kill(newPID, 0) != nil {
		t.Errorf("the new hornbeam %d is not running", newPID)
	}
}

func TestSocketActivation(t *testing.T) {
	needPython(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := ln.(*net.TCPListener).File()
	ln.Close()
	defer f.Close()
	// systemd sets LISTEN_PID to the pid it execs; sh's exec keeps the pid.
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@"`,
		hornbeamBin, "--python", python, "-w", "1", "--pythonpath", testdata(t), "ok_app")
	cmd.ExtraFiles = []*os.File{f}
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, pid := range children(cmd.Process.Pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr := f.Name()
	_ = addr
	url := "http://" + lnAddr(t, f) + "/"
	if !until(20*time.Second, func() bool { return body(url) == "hello from ok_app" }) {
		t.Fatalf("no answer on the activated socket; output:\n%s", out)
	}
	if strings.Contains(out.String(), "127.0.0.1:8000") {
		t.Errorf("with inherited sockets the default --bind must not be used:\n%s", out)
	}
}

// lnAddr returns the address of a listening socket file.
func lnAddr(t *testing.T, f *os.File) string {
	sa, err := syscall.Getsockname(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	in := sa.(*syscall.SockaddrInet4)
	return fmt.Sprintf("127.0.0.1:%d", in.Port)
}

func TestConfigFile(t *testing.T) {
	needPython(t)
	dir := t.TempDir()
	port := freePort(t)
	cfg := filepath.Join(dir, "hornbeam.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("bind = [\"127.0.0.1:%d\"]\nworkers = 3\ntimeout = \"7s\"\nmax_requests = 77\npythonpath = [%q]\n", port, testdata(t))), 0o644)

	// Precedence: flag > env > file > default, and where each came from.
	stdout, stderr, code, _ := runHB(t, 10*time.Second, []string{"HORNBEAM_WORKERS=5"}, "--config", cfg, "--timeout", "9", "--print-config")
	if code != 0 {
		t.Fatalf("--print-config exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		`workers = 5  # env HORNBEAM_WORKERS`,
		`timeout = "9s"  # command line`,
		`max_requests = 77  # file ` + cfg,
		fmt.Sprintf(`bind = ["127.0.0.1:%d"]  # file %s`, port, cfg),
		`threads = 1  # default`,
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("--print-config lacks %q:\n%s", want, stdout)
		}
	}
	// The file really configures a server.
	p := startHB(t, nil, "--config", cfg, "ok_app")
	p.waitReady(p.stderr.String)
	if b := body(fmt.Sprintf("http://127.0.0.1:%d/", port)); b != "hello from ok_app" {
		t.Errorf("server from the config file answered %q", b)
	}
	if n := len(workers(p.cmd.Process.Pid)); n != 3 {
		t.Errorf("%d workers, want 3 from the file", n)
	}
	// An unknown key is an error naming it.
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("wokers = 3\n"), 0o644)
	_, stderr, code, _ = runHB(t, 10*time.Second, nil, "--config", bad, "ok_app")
	if code == 0 || !strings.Contains(stderr, `unknown setting "wokers"`) {
		t.Errorf("unknown key: exit %d, %q", code, stderr)
	}
}

func TestCheckCommand(t *testing.T) {
	needPython(t)
	stdout, stderr, code, _ := runHB(t, 20*time.Second, nil, "--pythonpath", testdata(t), "check", "ok_app")
	if code != 0 || !strings.Contains(stdout, "imports and is callable") {
		t.Errorf("check ok_app: exit %d\n%s%s", code, stdout, stderr)
	}
	_, stderr, code, _ = runHB(t, 20*time.Second, nil, "--pythonpath", testdata(t), "check", "broken")
	if code != 1 || !strings.Contains(stderr, "SyntaxError") {
		t.Errorf("check broken: exit %d\n%s", code, stderr)
	}
}

func TestReloadOnChange(t *testing.T) {
	needPython(t)
	dir := t.TempDir()
	versionedApp(t, dir, "v1")
	port := freePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	p := startHB(t, nil, "-b", fmt.Sprintf("127.0.0.1:%d", port), "-w", "1", "--reload", "--pythonpath", dir, "deployed")
	p.waitReady(p.stderr.String)
	if got := body(url); got != "v1" {
		t.Fatalf("before: %q", got)
	}
	time.Sleep(1100 * time.Millisecond) // a distinct modification time
	versionedApp(t, dir, "v2")
	if !until(15*time.Second, func() bool { return body(url) == "v2" }) {
		t.Fatalf("--reload did not pick up the change; log:\n%s", p.stderr)
	}
}

func TestUmaskAndHealth(t *testing.T) {
	needPython(t)
	sock := filepath.Join(t.TempDir(), "hb.sock")
	port := freePort(t)
	p := startHB(t, nil, "-b", "unix:"+sock, "-b", fmt.Sprintf("127.0.0.1:%d", port), "--umask", "007",
		"--health-path", "/healthz", "-w", "1", "--pythonpath", testdata(t), "ok_app")
	p.waitReady(p.stderr.String)
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o770 {
		t.Errorf("socket mode %o with --umask 007, want 770", m)
	}
	code, b := get(t, nil, fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
	if code != 200 || !strings.HasPrefix(b, "ok: 1 workers ready") {
		t.Errorf("health: %d %q", code, b)
	}
	_ = strconv.Itoa
}

func TestTopSubcommand(t *testing.T) {
	needPython(t)
	port, sport := freePort(t), freePort(t)
	saddr := fmt.Sprintf("127.0.0.1:%d", sport)
	p := startHB(t, nil, "-b", fmt.Sprintf("127.0.0.1:%d", port), "-w", "2", "--stats-bind", saddr, "--pythonpath", testdata(t), "ok_app")
	p.waitReady(p.stderr.String)
	out, err := exec.Command(hornbeamBin, "top", "--once", saddr).CombinedOutput()
	if err != nil {
		t.Fatalf("hornbeam top --once: %v\n%s", err, out)
	}
	for _, pid := range workers(p.cmd.Process.Pid) {
		if !strings.Contains(string(out), strconv.Itoa(pid)) {
			t.Errorf("top does not list worker %d:\n%s", pid, out)
		}
	}
	out, err = exec.Command(hornbeamBin, "top", "--once", fmt.Sprintf("127.0.0.1:%d", freePort(t))).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--stats-bind") {
		t.Errorf("top against nothing: %v %s", err, out)
	}
}
