package asgi_test

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hornbeam-go/hornbeam/internal/testutil"
)

// The tests run the real server: the hornbeam command, built once by
// TestMain, serving apps from examples/ with Debian's interpreter.
const python = "/usr/bin/python3"

var hornbeamBin string

func TestMain(m *testing.M) {
	os.Exit(testutil.RunWithHornbeam(m, "../cmd/hornbeam", &hornbeamBin))
}

// server is one running hornbeam.
type server struct {
	t    *testing.T
	cmd  *exec.Cmd
	log  *testutil.SyncBuffer
	addr string // host:port
	done chan struct{}
}

func (s *server) url(path string) string { return "http://" + s.addr + path }

// needPython skips when Debian's interpreter or a module is missing.
func needPython(t *testing.T, modules ...string) {
	t.Helper()
	if _, err := os.Stat(python); err != nil {
		t.Skipf("%s is not installed", python)
	}
	for _, m := range modules {
		if err := exec.Command(python, "-c", "import "+m).Run(); err != nil {
			t.Skipf("python module %s is not installed (scripts/test.sh installs it)", m)
		}
	}
}

// start runs hornbeam -w 1 -k asgi on a free loopback port with the
// examples directory on the path, and waits until it answers. env is
// added to the environment. The process group is stopped when the test
// ends.
func start(t *testing.T, env []string, app string, args ...string) *server {
	t.Helper()
	needPython(t)
	ex, err := filepath.Abs("../examples")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	all := []string{"--python", python, "-w", "1", "-b", addr, "--pythonpath", ex}
	if app != "" {
		all = append(append(all, "-k", "asgi"), args...)
		all = append(all, app)
	} else {
		all = append(all, args...) // --mount: each app recognised
	}
	cmd := exec.Command(hornbeamBin, all...)
	cmd.Env = append(append(os.Environ(), "TMPDIR="+t.TempDir()), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	s := &server{t: t, cmd: cmd, log: &testutil.SyncBuffer{}, addr: addr, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("server log:\n%s", s.log.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			// The listener is the master's; wait for a worker to answer,
			// and for the master to have taken the workers as ready (its
			// banner): a signal before that stops a server still booting,
			// without the workers' graceful shutdown.
			if res, err := (&http.Client{Timeout: 5 * time.Second}).Get(s.url("/__ready__")); err == nil {
				res.Body.Close()
				if strings.Contains(s.log.String(), "listening on") {
					return s
				}
			}
		}
		select {
		case <-s.done:
			t.Fatalf("hornbeam exited before serving:\n%s", s.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("hornbeam did not serve within 20s:\n%s", s.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hbCommand is hornbeam with Debian's python, the examples on the path,
// and args, not started.
func hbCommand(t *testing.T, args ...string) *exec.Cmd {
	ex, _ := filepath.Abs("../examples")
	cmd := exec.Command(hornbeamBin, append([]string{"--python", python, "-w", "1", "-b", "127.0.0.1:0", "--pythonpath", ex}, args...)...)
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	return cmd
}

// stop sends SIGTERM and waits (then SIGKILL to the group).
func (s *server) stop() {
	s.signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL) // any worker left behind
}

func (s *server) signal(sig syscall.Signal) { s.cmd.Process.Signal(sig) }

// waitExit waits for the server to exit by itself and returns its status.
func (s *server) waitExit(d time.Duration) int {
	s.t.Helper()
	select {
	case <-s.done:
		return s.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		s.t.Fatalf("hornbeam still running after %s", d)
		return -1
	}
}

// get fetches path and returns the status and body.
func (s *server) get(path string) (int, string) {
	s.t.Helper()
	res, err := (&http.Client{Timeout: 10 * time.Second}).Get(s.url(path))
	if err != nil {
		s.t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		s.t.Fatalf("GET %s: reading the body: %v", path, err)
	}
	return res.StatusCode, string(b)
}

// waitLog waits until the server's log has every one of want.
func (s *server) waitLog(d time.Duration, want ...string) {
	s.t.Helper()
	deadline := time.Now().Add(d)
	for {
		log := s.log.String()
		missing := ""
		for _, w := range want {
			if !strings.Contains(log, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the log has no %q after %s:\n%s", missing, d, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
