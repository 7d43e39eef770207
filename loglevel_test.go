package hornbeam_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/hornbeam-go/hornbeam"
)

// logLine matches one line of the error log at level, its message matching
// msg (a regular expression).
func logLine(level, msg string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \[` + level + `\] ` + msg)
}

// waitLogLine waits for a line matching re in s's error log.
func waitLogLine(t *testing.T, s *testServer, re *regexp.Regexp) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !re.MatchString(s.Log.String()) {
		if time.Now().After(deadline) {
			t.Errorf("no error log line matches %s", re)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLogLevels: the pool's and the request handler's messages, and a
// worker's output, reach the error log with their level (the prefix their
// *log.Logger message starts with; see package errlog).
func TestLogLevels(t *testing.T) {
	// lvl_app is core, from a module that the reload step breaks.
	dir := t.TempDir()
	appFile := filepath.Join(dir, "lvl_app.py")
	if err := os.WriteFile(appFile, []byte("from core import application\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := start(t, "lvl_app", hornbeam.Options{
		WorkerMode: hornbeam.ModeProcess, Workers: 1, Timeout: time.Second, GracefulTimeout: time.Second,
		PythonPath: []string{dir, appsDir(t)},
	})
	ctx := context.Background()
	pid := func() string {
		t.Helper()
		code, body := get(t, s.URL+"/pid")
		if code != 200 {
			t.Fatalf("/pid: %d %q", code, body)
		}
		return body
	}
	tests := []struct {
		name  string
		do    func() // what makes the message
		level string
		msg   string // the message, a regular expression
	}{
		{"worker started", func() {}, "INFO", `booting worker with pid \d+ \(slot 1\)`},
		{"worker output", func() { get(t, s.URL+"/log") }, "INFO", `\[worker \d+\] printed to stdout by the app$`},
		{"app error before the response", func() { get(t, s.URL+"/boom") }, "ERROR", `GET /boom: RuntimeError: kaboom before the response \(500\)$`},
		{"app error after the response started", func() { http.Get(s.URL + "/boom-late") }, "ERROR", `.*after the response started; closing the connection$`},
		{"scaling below one worker", func() { s.Scale(ctx, -1) }, "WARNING", `not scaling down: one worker is the minimum$`},
		{"scaling up", func() { s.Scale(ctx, 1) }, "INFO", `scaling up: starting worker slot 2$`},
		{"scaling down", func() { s.Scale(ctx, -1) }, "INFO", `retiring worker \d+ \(slot 2\): scaling down$`},
		{"an idle worker killed", func() {
			p, _ := strconv.Atoi(pid())
			syscall.Kill(p, syscall.SIGKILL)
		}, "WARNING", `worker \d+ \(slot 1\) was killed by signal 9 \(SIGKILL, killed\)$`},
		{"a worker killed with a request", func() {
			pid()                    // the replacement is serving
			http.Get(s.URL + "/die") // the worker kills itself
		}, "ERROR", `worker \d+ \(slot 1\) was killed by signal 9 \(SIGKILL, killed\); it held: GET /die$`},
		{"the request it held", func() {}, "ERROR", `GET /die: worker \d+ died while handling it$`},
		{"a request past --timeout", func() {
			pid()
			get(t, s.URL+"/sleep?s=3")
		}, "WARNING", `worker \d+: request GET /sleep .*; dumping its Python threads, then killing it$`},
		{"a failed reload", func() {
			pid()
			os.WriteFile(appFile, []byte("raise RuntimeError('broken on disk')\n"), 0o644)
			s.Reload(ctx)
		}, "ERROR", `reload failed, the old workers keep serving: .*RuntimeError: broken on disk`},
	}
	for _, tt := range tests {
		tt.do()
		waitLogLine(t, s, logLine(tt.level, tt.msg))
		if t.Failed() {
			t.Fatalf("%s: want a [%s] line", tt.name, tt.level)
		}
	}
	// No message of those above is logged at another level.
	for _, tt := range tests {
		if other := regexp.MustCompile(`(?m)\[(DEBUG|INFO|WARNING|ERROR)\] ` + tt.msg); other.MatchString(s.Log.String()) {
			for _, m := range other.FindAllStringSubmatch(s.Log.String(), -1) {
				if m[1] != tt.level {
					t.Errorf("%s: logged at %s too: %s", tt.name, m[1], m[0])
				}
			}
		}
	}
}

// TestEmbeddedWorkerLogLevel: an embedded worker's own messages ("error:
// ..." on its stderr) keep their level in the server's error log.
func TestEmbeddedWorkerLogLevel(t *testing.T) {
	s := startEmbedded(t, "core", hornbeam.Options{Workers: 1, Timeout: time.Second, GracefulTimeout: time.Second})
	if code, _ := get(t, s.URL+"/sleep?s=3"); code != 504 {
		t.Errorf("/sleep past --timeout: %d, want 504", code)
	}
	waitLogLine(t, s, logLine("ERROR", `\[worker \d+\] worker \d+ takes no more connections`))
	waitLogLine(t, s, logLine("INFO", `\[worker \d+\] .*core\.py", line \d+,? in application`))
}
