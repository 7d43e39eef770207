package pool

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hornbeam-go/hornbeam/errlog"
	"golang.org/x/sys/unix"
	"net"
	"syscall"
)

// A worker's output lines keep their level prefix (moved in front of the
// pid marker, where errlog reads it), except within a Python traceback.
func TestOutputLinesLevels(t *testing.T) {
	tests := []struct {
		name  string
		lines []string // pieces as read, each ending its line unless noted
		want  []string // the messages printed to the error log
		logs  []string // what errlog writes for them, after the time stamp
	}{
		{"plain line is info", []string{"hello\n"}, []string{"[worker 7] hello"}, []string{"[INFO] [worker 7] hello"}},
		{"error prefix", []string{"error: worker 7 takes no more connections\n"},
			[]string{"error: [worker 7] worker 7 takes no more connections"}, []string{"[ERROR] [worker 7] worker 7 takes no more connections"}},
		{"warning prefix", []string{"warning: finalising Python: x\n"},
			[]string{"warning: [worker 7] finalising Python: x"}, []string{"[WARNING] [worker 7] finalising Python: x"}},
		{"debug prefix", []string{"debug: details\n"}, []string{"debug: [worker 7] details"}, []string{"[DEBUG] [worker 7] details"}},
		{"prefix only at the start", []string{"the app said error: x\n"}, []string{"[worker 7] the app said error: x"}, []string{"[INFO] [worker 7] the app said error: x"}},
		{"prefix is case-sensitive", []string{"Error: x\n"}, []string{"[worker 7] Error: x"}, []string{"[INFO] [worker 7] Error: x"}},
		{"no final newline", []string{"error: last words"}, []string{"error: [worker 7] last words"}, []string{"[ERROR] [worker 7] last words"}},
		{"traceback lines stay as they are",
			[]string{"Traceback (most recent call last):\n", "  File \"app.py\", line 3, in <module>\n", "    raise error(\"boom\")\n", "error: boom\n", "error: after the traceback\n"},
			[]string{"[worker 7] Traceback (most recent call last):", "[worker 7]   File \"app.py\", line 3, in <module>", "[worker 7]     raise error(\"boom\")", "[worker 7] error: boom", "error: [worker 7] after the traceback"},
			[]string{"[INFO] [worker 7] Traceback (most recent call last):", "[INFO] [worker 7]   File \"app.py\", line 3, in <module>", "[INFO] [worker 7]     raise error(\"boom\")", "[INFO] [worker 7] error: boom", "[ERROR] [worker 7] after the traceback"}},
		{"chained traceback",
			[]string{"Traceback (most recent call last):\n", "  File \"a.py\", line 1, in f\n", "KeyError: 'x'\n", "\n", "During handling of the above exception, another exception occurred:\n", "\n",
				"Traceback (most recent call last):\n", "  File \"a.py\", line 3, in f\n", "error: second\n", "warning: next\n"},
			[]string{"[worker 7] Traceback (most recent call last):", "[worker 7]   File \"a.py\", line 1, in f", "[worker 7] KeyError: 'x'", "[worker 7] ", "[worker 7] During handling of the above exception, another exception occurred:", "[worker 7] ",
				"[worker 7] Traceback (most recent call last):", "[worker 7]   File \"a.py\", line 3, in f", "[worker 7] error: second", "warning: [worker 7] next"},
			nil},
		{"the rest of a long line is not mapped", []string{"xxxx", "error: not a prefix\n", "error: a prefix\n"},
			[]string{"[worker 7] xxxx", "[worker 7] error: not a prefix", "error: [worker 7] a prefix"}, nil},
		{"carriage return", []string{"warning: x\r\n"}, []string{"warning: [worker 7] x\r"}, []string{"[WARNING] [worker 7] x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := outputLines{prefix: "[worker 7] "}
			var out bytes.Buffer
			ew := errlog.New(&out, errlog.Debug)
			l := ew.Logger()
			for i, piece := range tt.lines {
				got := o.format([]byte(piece))
				if i < len(tt.want) && got != tt.want[i] {
					t.Errorf("piece %d %q: printed %q, want %q", i, piece, got, tt.want[i])
				}
				l.Print(got)
			}
			if tt.logs == nil {
				return
			}
			var lines []string
			for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
				if len(line) > len(errlog.TimeFormat)+1 {
					line = line[len(errlog.TimeFormat)+1:]
				}
				lines = append(lines, line)
			}
			if strings.Join(lines, "\n") != strings.Join(tt.logs, "\n") {
				t.Errorf("error log:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(tt.logs, "\n"))
			}
		})
	}
}

// TestGoCrashReport: of Go's report of a fatal signal in an embedded
// worker, the header and the goroutine that took the signal are kept, the
// rest is counted and dropped, and the signal is named; output before it
// (Python's traceback) passes.
func TestGoCrashReport(t *testing.T) {
	out := strings.Split(`Fatal Python error: Segmentation fault
  File "/app/core.py", line 182 in application
SIGSEGV: segmentation violation
PC=0x7f4b5e173eec m=0 sigcode=18446744073709551610 addr=0x367
signal arrived during cgo execution

goroutine 18 gp=0x3c73ba632960 m=0 mp=0xe6cec0 [syscall, locked to thread]:
runtime.cgocall(0x7aa180, 0x3c73ba5ce6c0)
	/usr/local/go/src/runtime/cgocall.go:167 +0x4b
github.com/hornbeam-go/hornbeam/wsgiembed.(*App).callHandle(0x3c73ba65a3f0)

goroutine 1 gp=0x25339545e1e0 m=nil [select]:
runtime.gopark(0x0?, 0x0?, 0x70?, 0xa0?, 0x474aec?)

rax    0x0
rbx    0x1
`, "\n")
	var c goCrash
	var kept []string
	for _, l := range out {
		if c.keep([]byte(l + "\n")) {
			kept = append(kept, l)
		}
	}
	got := strings.Join(kept, "\n")
	for _, want := range []string{"Fatal Python error", "core.py", "SIGSEGV: segmentation violation", "PC=0x", "goroutine 18", "callHandle"} {
		if !strings.Contains(got, want) {
			t.Errorf("dropped %q; kept:\n%s", want, got)
		}
	}
	for _, gone := range []string{"goroutine 1 ", "gopark", "rax"} {
		if strings.Contains(got, gone) {
			t.Errorf("kept %q:\n%s", gone, got)
		}
	}
	if c.signal != syscall.SIGSEGV || c.dropped != 6 {
		t.Errorf("signal %v, %d lines dropped; want SIGSEGV, 6", c.signal, c.dropped)
	}
	// A line that looks like a header but is not followed by "PC=" is no report.
	var d goCrash
	for _, l := range []string{"SIGTERM: a log line of the app", "more", "goroutine 5 [x]:", "", "after"} {
		if !d.keep([]byte(l + "\n")) {
			t.Errorf("dropped %q: no Go report here", l)
		}
	}
	if d.signal != 0 {
		t.Errorf("signal %v from an app's log line", d.signal)
	}
}

// TestInheritableStaysNonBlocking: the copy of a listening socket that the
// pool hands to the embedded workers stays non-blocking when os/exec
// calls Fd on it (as it does for every worker started); a File from
// TCPListener.File is put in blocking mode, socket-wide, by Fd.
func TestInheritableStaysNonBlocking(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	orig, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	nonblocking := func(fd uintptr) bool {
		fl, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
		if err != nil {
			t.Fatal(err)
		}
		return fl&unix.O_NONBLOCK != 0
	}
	f, err := inheritable(orig)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	orig.Close()
	if !nonblocking(f.Fd()) || !nonblocking(f.Fd()) {
		t.Errorf("the workers' copy of the socket is in blocking mode after Fd")
	}
	// What it guards against.
	g, _ := ln.(*net.TCPListener).File()
	defer g.Close()
	g.Fd()
	if nonblocking(f.Fd()) {
		t.Logf("note: TCPListener.File().Fd() no longer sets blocking mode")
	}
}
