package top

import (
	"errors"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// terminal is a pseudo-terminal: Main gets tty as stdin and stdout, the
// test reads the screen from the master and types into it.
type terminal struct {
	ptmx, tty *os.File
	raw       lockedBuffer // everything written to the screen
}

func openTerminal(t *testing.T) *terminal {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 40, Cols: 160}); err != nil {
		t.Fatal(err)
	}
	term := &terminal{ptmx: ptmx, tty: tty}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 8192)
		for {
			n, err := ptmx.Read(buf)
			term.raw.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		tty.Close()
		ptmx.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("pty reader did not stop")
		}
	})
	return term
}

var escapes = regexp.MustCompile(`\x1b\[[0-9;?<=>]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>78]`)

// text is the screen output so far without escape sequences.
func (term *terminal) text() string { return escapes.ReplaceAllString(term.raw.String(), "") }

// lflags are the terminal's local modes that raw mode turns off.
func (term *terminal) lflags(t *testing.T) uint32 {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(term.tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return tio.Lflag & (unix.ICANON | unix.ECHO | unix.ISIG)
}

// start runs Main on the terminal; the channel delivers its exit code.
func (term *terminal) start(args ...string) (<-chan int, *lockedBuffer) {
	stderr := new(lockedBuffer)
	done := make(chan int, 1)
	go func() { done <- Main(args, term.tty, term.tty, stderr) }()
	return done, stderr
}

// waitExit waits up to d for Main to return, then checks that it exited
// 0 and gave the terminal back: cooked mode, main screen, cursor shown.
func (term *terminal) waitExit(t *testing.T, done <-chan int, stderr *lockedBuffer, d time.Duration, modes uint32) {
	t.Helper()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d, stderr %q", code, stderr.String())
		}
	case <-time.After(d):
		t.Fatalf("Main did not return within %s", d)
	}
	if got := term.lflags(t); got != modes {
		t.Errorf("terminal modes not restored: lflag %#x, was %#x", got, modes)
	}
	time.Sleep(100 * time.Millisecond) // let the reader catch the last bytes
	raw := term.raw.String()
	enter, leave := strings.Index(raw, "\x1b[?1049h"), strings.LastIndex(raw, "\x1b[?1049l")
	if enter < 0 || leave < enter {
		t.Errorf("alternate screen not entered and left (enter at %d, leave at %d)", enter, leave)
	}
	if !strings.Contains(raw[max(leave, 0):], "\x1b[?25h") && !strings.Contains(raw[max(enter, 0):], "\x1b[?25h") {
		t.Errorf("cursor not shown again")
	}
}

func TestInteractiveRefreshesAndQuitsOnQ(t *testing.T) {
	ls := startServer(t, "127.0.0.1:0")
	term := openTerminal(t)
	modes := term.lflags(t)
	if modes&unix.ICANON == 0 {
		t.Fatalf("fresh pty not in cooked mode: %#x", modes)
	}
	done, stderr := term.start("--interval", "300ms", ls.stats)

	pids := func(s string) bool {
		for _, w := range ls.srv.Stats().Workers {
			if !strings.Contains(s, strconv.Itoa(w.PID)) {
				return false
			}
		}
		return strings.Contains(s, "requests 0 ")
	}
	waitFor(t, 3*time.Second, "screen with both worker pids", term.text, pids)
	if term.lflags(t)&(unix.ICANON|unix.ECHO) != 0 {
		t.Errorf("terminal not in raw mode while running")
	}

	// More requests: the screen refreshes with the new total and rate.
	for range 3 {
		ls.get(t, "/")
	}
	refreshed := regexp.MustCompile(`requests 3 `)
	waitFor(t, 3*time.Second, "refresh showing 3 requests", term.text, refreshed.MatchString)
	// A held worker shows as busy with its request.
	release := ls.holdWorker(t)
	waitFor(t, 3*time.Second, "busy worker on screen", term.text, regexp.MustCompile(`busy\s+\d+\s+\S+\s+0\s+\S+\s+GET /sleep`).MatchString)
	release()

	if _, err := term.ptmx.Write([]byte("q")); err != nil {
		t.Fatal(err)
	}
	term.waitExit(t, done, stderr, 2*time.Second, modes)
}

func TestInteractiveQuitsOnCtrlC(t *testing.T) {
	ls := startServer(t, "127.0.0.1:0")
	term := openTerminal(t)
	modes := term.lflags(t)
	done, stderr := term.start(ls.stats)
	pid := strconv.Itoa(ls.srv.Stats().Workers[0].PID)
	waitFor(t, 3*time.Second, "screen with a worker pid", term.text, func(s string) bool { return strings.Contains(s, pid) })
	if _, err := term.ptmx.Write([]byte("\x03")); err != nil {
		t.Fatal(err)
	}
	term.waitExit(t, done, stderr, 2*time.Second, modes)
}

func TestViewFitsHeightAndShowsPollErrors(t *testing.T) {
	_, cur := snapshots()
	for i := range 30 {
		cur.Workers = append(cur.Workers, cur.Workers[1])
		cur.Workers[len(cur.Workers)-1].Slot = 10 + i
	}
	src, _ := NewSource("127.0.0.1:1")
	m := &model{src: src, interval: time.Second, cur: cur, at: time.Now(), sum: Summarize(nil, cur, 0)}
	m.resize(120, 15)
	view := m.View()
	if n := strings.Count(view, "\n") + 1; n > 15 {
		t.Errorf("view has %d lines for a 15-line terminal:\n%s", n, view)
	}
	if !strings.Contains(view, "more workers") || !strings.HasSuffix(view, "q quit") {
		t.Errorf("view:\n%s", view)
	}
	m.polled(pollMsg{err: &reachError{errors.New("connection refused")}, at: time.Now()})
	view = m.View()
	if !strings.Contains(view, "poll failed") || !strings.Contains(view, "start hornbeam with --stats-bind 127.0.0.1:1") ||
		!strings.Contains(view, "4242") {
		t.Errorf("a failed poll should keep the last data and say why:\n%s", view)
	}
}
