package main

// Signals as operators send them: during the boot, to stop at once, to
// reopen the log files; and the error log's format and level.

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitListening waits until addr accepts connections (the socket is
// bound; the workers may still be booting).
func waitListening(t *testing.T, p *hbProc, addr string) {
	t.Helper()
	if !until(10*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil || p.exited()
	}) || p.exited() {
		t.Fatalf("%s never accepted connections", addr)
	}
}

// A signal that arrives after the port is bound but before the workers
// are ready: SIGHUP, SIGTTIN and SIGTTOU are carried out once the pool is
// up (they used to kill or stop the process); SIGTERM, SIGINT and SIGQUIT
// end the boot cleanly.
func TestSignalsDuringBoot(t *testing.T) {
	needPython(t)
	tests := []struct {
		name    string
		sig     syscall.Signal
		workers int
		// for a signal that asks for work: what the log must then say and
		// the workers that must then run; for a stop: 0 and "".
		log      string
		wantWkrs int
	}{
		{"SIGHUP reloads once ready", syscall.SIGHUP, 1, "reloaded: 1 workers", 1},
		{"SIGTTIN adds a worker once ready", syscall.SIGTTIN, 1, "SIGTTIN: 2 workers wanted", 2},
		{"SIGTTOU retires a worker once ready", syscall.SIGTTOU, 2, "SIGTTOU: 1 workers wanted", 1},
		{"SIGTERM stops the boot", syscall.SIGTERM, 1, "", 0},
		{"SIGINT stops the boot", syscall.SIGINT, 1, "", 0},
		{"SIGQUIT stops the boot", syscall.SIGQUIT, 1, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			p := startHB(t, []string{"SLOW_APP_SECONDS=1.5"}, "-b", addr, "-w", fmt.Sprint(tt.workers), "--pythonpath", testdata(t), "slow_app")
			waitListening(t, p, addr)
			if strings.Contains(p.stderr.String(), " listening on ") {
				t.Fatalf("the workers were ready before the signal could be sent")
			}
			booting := children(p.cmd.Process.Pid)
			for _, pid := range booting {
				p.seen[pid] = true
			}
			p.cmd.Process.Signal(tt.sig)
			if tt.log == "" {
				if code := p.wait(5 * time.Second); code != 0 {
					t.Errorf("exit status %d after %s during the boot, want 0", code, tt.sig)
				}
				stderr := p.stderr.String()
				noGoCrash(t, stderr)
				if !strings.Contains(stderr, "stopped by "+signalName(tt.sig)+" before the workers were ready") || strings.Contains(stderr, " listening on ") {
					t.Errorf("want the boot abandoned, said once:\n%s", stderr)
				}
				for _, pid := range booting {
					if !until(2*time.Second, func() bool { return !isWorker(pid) }) {
						t.Errorf("booting worker %d still runs", pid)
					}
				}
				return
			}
			p.waitReady(p.stderr.String)
			if !until(15*time.Second, func() bool { return strings.Contains(p.stderr.String(), tt.log) }) {
				t.Fatalf("%s during the boot: no %q once the workers were up:\n%s", tt.sig, tt.log, p.stderr)
			}
			if !until(10*time.Second, func() bool { return len(workers(p.cmd.Process.Pid)) == tt.wantWkrs }) {
				t.Errorf("%d workers, want %d", len(workers(p.cmd.Process.Pid)), tt.wantWkrs)
			}
			if p.exited() {
				t.Fatalf("the server exited")
			}
			if b := body("http://" + addr + "/"); b == "" {
				t.Errorf("no answer after the signal was carried out")
			}
		})
	}
}

// A second SIGINT (Ctrl-C twice), or a SIGQUIT, stops at once: the
// request in flight is cut, the worker killed, no goroutine dump.
func TestStopAtOnce(t *testing.T) {
	needPython(t)
	for _, tt := range []struct {
		name string
		sigs []syscall.Signal
		log  string
	}{
		{"SIGINT twice", []syscall.Signal{syscall.SIGINT, syscall.SIGINT}, "SIGINT again: stopping at once"},
		{"SIGQUIT", []syscall.Signal{syscall.SIGQUIT}, "SIGQUIT: stopping at once"},
		{"SIGTERM then SIGQUIT", []syscall.Signal{syscall.SIGTERM, syscall.SIGQUIT}, "SIGQUIT: stopping at once"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			p := startHB(t, nil, "-b", addr, "-w", "1", "--graceful-timeout", "60", "--pythonpath", testdata(t), "ok_app")
			p.waitReady(p.stderr.String)
			ws := workers(p.cmd.Process.Pid)
			res := make(chan int, 1)
			go func() {
				resp, err := (&http.Client{Timeout: 40 * time.Second}).Get("http://" + addr + "/sleep?s=30")
				if err != nil {
					res <- -1
					return
				}
				resp.Body.Close()
				res <- resp.StatusCode
			}()
			if !until(10*time.Second, func() bool { return strings.Contains(p.stderr.String(), "ok_app: sleeping 30") }) {
				t.Fatalf("the request never reached the app")
			}
			for i, sig := range tt.sigs {
				if i > 0 {
					time.Sleep(300 * time.Millisecond)
					if p.exited() {
						t.Fatalf("exited after the first %s", tt.sigs[0])
					}
				}
				p.cmd.Process.Signal(sig)
			}
			if code := p.wait(3 * time.Second); code != 0 {
				t.Errorf("exit status %d, want 0", code)
			}
			stderr := p.stderr.String()
			noGoCrash(t, stderr)
			if !strings.Contains(stderr, tt.log) {
				t.Errorf("no %q in the log:\n%s", tt.log, stderr)
			}
			select {
			case code := <-res:
				if code == 200 {
					t.Errorf("the 30 s request finished with 200; it should have been cut")
				}
			case <-time.After(5 * time.Second):
				t.Errorf("the request in flight was not cut")
			}
			for _, pid := range ws {
				if !until(2*time.Second, func() bool { return !isWorker(pid) }) {
					t.Errorf("worker %d still runs", pid)
				}
			}
		})
	}
}

// logrotate: rename the access log and the error log, send SIGUSR1, and
// new lines (the server's and the workers') go to new files at the same
// paths.
func TestSIGUSR1ReopensLogs(t *testing.T) {
	needPython(t)
	dir := t.TempDir()
	accessLog, errorLog := filepath.Join(dir, "access.log"), filepath.Join(dir, "error.log")
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	p := startHB(t, nil, "-b", fmt.Sprintf("127.0.0.1:%d", port), "-w", "1", "--pythonpath", testdata(t),
		"--access-log", accessLog, "--error-log", errorLog, "ok_app")
	read := func(path string) string { b, _ := os.ReadFile(path); return string(b) }
	p.waitReady(func() string { return read(errorLog) })
	get(t, nil, base+"/before-rotation")
	if !until(3*time.Second, func() bool { return strings.Contains(read(accessLog), "/before-rotation") }) {
		t.Fatalf("no access log line:\n%s", read(accessLog))
	}
	for _, f := range []string{accessLog, errorLog} {
		if err := os.Rename(f, f+".1"); err != nil {
			t.Fatal(err)
		}
	}
	p.cmd.Process.Signal(syscall.SIGUSR1)
	if !until(5*time.Second, func() bool { return strings.Contains(read(errorLog), "SIGUSR1: reopened") }) {
		t.Fatalf("no new error log with the reopen message; old one:\n%s", read(errorLog+".1"))
	}
	get(t, nil, base+"/sleep?s=0.01")
	if !until(3*time.Second, func() bool {
		return strings.Contains(read(accessLog), "/sleep?s=0.01") && strings.Contains(read(errorLog), "ok_app: sleeping 0.01")
	}) {
		t.Errorf("after SIGUSR1 the new files lack the new lines:\naccess:\n%s\nerror:\n%s", read(accessLog), read(errorLog))
	}
	if old := read(accessLog + ".1"); !strings.Contains(old, "/before-rotation") || strings.Contains(old, "/sleep") {
		t.Errorf("rotated access log:\n%s", old)
	}
	if old := read(errorLog + ".1"); !strings.Contains(old, " listening on ") || strings.Contains(old, "sleeping") {
		t.Errorf("rotated error log:\n%s", old)
	}
	if strings.Contains(read(accessLog), "/before-rotation") || strings.Contains(read(errorLog), " listening on ") {
		t.Errorf("the new files hold lines from before the rotation")
	}
	if p.stderr.String() != "" {
		t.Errorf("stderr: %s", p.stderr)
	}
}

// A reload whose new code does not import is logged once, and the old
// workers keep serving.
func TestFailedReloadLoggedOnce(t *testing.T) {
	needPython(t)
	dir := t.TempDir()
	versionedApp(t, dir, "v1")
	port := freePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	p := startHB(t, nil, "-b", fmt.Sprintf("127.0.0.1:%d", port), "-w", "2", "--pythonpath", dir, "deployed")
	p.waitReady(p.stderr.String)
	os.WriteFile(filepath.Join(dir, "deployed.py"), []byte("def application(environ, start_response)\n"), 0o644)
	os.RemoveAll(filepath.Join(dir, "__pycache__"))
	p.cmd.Process.Signal(syscall.SIGHUP)
	if !until(15*time.Second, func() bool { return strings.Contains(p.stderr.String(), "reload failed") }) {
		t.Fatalf("no reload failure in the log:\n%s", p.stderr)
	}
	time.Sleep(time.Second)
	if n := strings.Count(p.stderr.String(), "reload failed"); n != 1 {
		t.Errorf("the failed reload is logged %d times, want once:\n%s", n, p.stderr)
	}
	if b := body(url); b != "v1" {
		t.Errorf("after the failed reload: %q, want v1 from the old workers", b)
	}
}

// Every line of the error log, the server's and the workers', has one
// format: time stamp, level, message. The banner names the pid, the
// interpreter and its version; --log-level drops the lines below it.
func TestErrorLogFormatAndLevel(t *testing.T) {
	needPython(t)
	for _, tt := range []struct {
		level     string
		banner    bool   // the INFO lines are written
		wantLevel string // a level that must appear
	}{
		{"debug", true, "INFO"},
		{"info", true, "INFO"},
		{"warning", false, "WARNING"},
		{"error", false, ""},
	} {
		t.Run(tt.level, func(t *testing.T) {
			port := freePort(t)
			addr := fmt.Sprintf("127.0.0.1:%d", port)
			p := startHB(t, nil, "-b", addr, "-w", "1", "--timeout", "1", "--log-level", tt.level, "--pythonpath", testdata(t), "ok_app")
			if !until(15*time.Second, func() bool { return body("http://"+addr+"/hello") == "hello from ok_app" }) {
				t.Fatalf("not serving:\n%s", p.stderr)
			}
			get(t, nil, "http://"+addr+"/sleep?s=3") // a 504: a WARNING-or-worse line, and a worker replaced
			p.cmd.Process.Signal(syscall.SIGHUP)
			if !until(10*time.Second, func() bool { return len(workers(p.cmd.Process.Pid)) == 1 && body("http://"+addr+"/hello") != "" }) {
				t.Fatalf("no worker after the reload")
			}
			time.Sleep(500 * time.Millisecond)
			p.cmd.Process.Signal(syscall.SIGQUIT) // a WARNING line
			if code := p.wait(10 * time.Second); code != 0 {
				t.Errorf("exit status %d", code)
			}
			stderr := p.stderr.String()
			levels := map[string]bool{}
			for _, l := range lines(stderr) {
				m := logLine.FindStringSubmatch(l)
				if m == nil {
					t.Errorf("not a log line: %q", l)
					continue
				}
				levels[m[2]] = true
			}
			if tt.wantLevel != "" && !levels[tt.wantLevel] {
				t.Errorf("no %s line:\n%s", tt.wantLevel, stderr)
			}
			if levels["INFO"] != tt.banner || (tt.level != "debug" && levels["DEBUG"]) || (tt.level == "error" && levels["WARNING"]) {
				t.Errorf("--log-level %s wrote levels %v:\n%s", tt.level, levels, stderr)
			}
			if !tt.banner {
				return
			}
			banner := regexp.MustCompile(fmt.Sprintf(`\[INFO\] hornbeam \S+ listening on http://%s \(1 workers, process mode \(no hornbeam-worker\.so beside the binary for embedded workers\), app ok_app:application, pid %d, Python 3\.\d+\.\d+\S* at /usr/bin/python3\)$`,
				regexp.QuoteMeta(addr), p.cmd.Process.Pid))
			found := false
			for _, l := range lines(stderr) {
				found = found || banner.MatchString(l)
			}
			if !found {
				t.Errorf("no banner matching %s:\n%s", banner, stderr)
			}
			for _, w := range []string{"] [worker ", "ok_app: imported in pid", "SIGHUP: reloading the workers", "[WARNING] SIGQUIT: stopping at once"} {
				if !strings.Contains(stderr, w) {
					t.Errorf("no %q in the log:\n%s", w, stderr)
				}
			}
		})
	}
}
