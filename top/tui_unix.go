//go:build unix

package top

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/charmbracelet/x/term"
	"golang.org/x/sys/unix"

	"github.com/hornbeam-go/hornbeam"
)

// runTUI draws the live screen on the terminal out until the user quits
// (q, Esc or Ctrl-C) or ctx ends. The keyboard (stdin when it is a
// terminal, else /dev/tty) is put in raw mode and the screen on the
// alternate buffer; both are restored on return. Without a keyboard it
// runs until SIGINT or SIGTERM.
func runTUI(ctx context.Context, src *Source, first hornbeam.Stats, at time.Time, interval time.Duration, stdin io.Reader, out *os.File, _ io.Writer) int {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m := &model{src: src, interval: interval, cur: first, at: at, sum: Summarize(nil, first, 0)}
	m.title, m.header, m.busy, m.other, m.bad, m.dim = screenStyles()

	var in *os.File
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(f.Fd()) {
		in = f
	} else if tty, err := os.Open("/dev/tty"); err == nil {
		defer tty.Close()
		in = tty
	}
	inFd := -1
	var saved *term.State
	raw := func() {
		if in == nil {
			return
		}
		if st, err := term.MakeRaw(in.Fd()); err == nil {
			saved, inFd = st, int(in.Fd())
		}
	}
	cooked := func() {
		if saved != nil {
			term.Restore(uintptr(inFd), saved)
		}
	}
	enter := func() { io.WriteString(out, altScreenOn+cursorHide+wrapOff+clearScreen) }
	leave := func() { io.WriteString(out, wrapOn+cursorShow+altScreenOff) }
	raw()
	enter()
	defer func() {
		leave()
		cooked()
	}()

	keys := make(chan key, 1)
	stopKeys, keysDone := make(chan struct{}), make(chan struct{})
	if inFd >= 0 {
		go readKeys(inFd, keys, stopKeys, keysDone)
	} else {
		close(keysDone)
	}
	defer func() {
		close(stopKeys)
		<-keysDone
	}()

	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	defer signal.Stop(winch)

	draw := func() {
		if w, h, err := term.GetSize(out.Fd()); err == nil {
			m.resize(w, h)
		}
		io.WriteString(out, frame(m.View()))
	}
	draw()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	polls := make(chan pollMsg, 1)
	polling := false
	for {
		select {
		case <-ctx.Done():
			return 0
		case k := <-keys:
			switch k {
			case keyQuit:
				return 0
			case keySuspend:
				leave()
				cooked()
				suspend()
				raw()
				enter()
				draw()
			}
		case <-winch:
			draw()
		case <-tick.C:
			if !polling {
				polling = true
				go func() {
					st, err := src.Fetch(ctx)
					polls <- pollMsg{st: st, err: err, at: time.Now()}
				}()
			}
		case p := <-polls:
			polling = false
			if ctx.Err() != nil {
				return 0
			}
			m.polled(p)
			draw()
		}
	}
}

// readKeys reads the keyboard at fd until stop is closed or the terminal
// goes away, sending what the keys ask for. It polls, so that it can stop
// without a key being pressed.
func readKeys(fd int, keys chan<- key, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	buf := make([]byte, 256)
	for {
		select {
		case <-stop:
			return
		default:
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 100)
		if err == unix.EINTR || (err == nil && n == 0) {
			continue
		}
		if err != nil || fds[0].Revents&unix.POLLIN == 0 {
			return // POLLHUP, POLLERR, POLLNVAL: no keyboard any more
		}
		r, err := unix.Read(fd, buf)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		if err != nil || r <= 0 {
			return
		}
		if k := parseKeys(buf[:r]); k != keyNone {
			select {
			case keys <- k:
			case <-stop:
				return
			}
		}
	}
}

// suspend stops the process group as Ctrl-Z does in cooked mode, and
// returns once it is continued (or at once if it could not be stopped,
// as in an orphaned process group).
func suspend() {
	cont := make(chan os.Signal, 1)
	signal.Notify(cont, syscall.SIGCONT)
	defer signal.Stop(cont)
	syscall.Kill(0, syscall.SIGTSTP)
	select {
	case <-cont:
	case <-time.After(100 * time.Millisecond):
	}
}
