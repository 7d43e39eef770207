package pool

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hornbeam-go/hornbeam/internal/wire"
)

type workerState int

const (
	stateStarting workerState = iota
	stateReady
	stateDraining // takes no new requests; exits when idle
	stateDead     // condemned or gone
)

func (s workerState) String() string {
	return [...]string{"starting", "ready", "draining", "dead"}[s]
}

// bootstrap is the Python the worker runs; see python/hornbeam/_worker.py.
const bootstrap = "from hornbeam._worker import main; main()"

// exitImportFailed is the worker's exit status when the app does not import.
const exitImportFailed = 3

// worker is one Python process. Fields marked (p.mu) are guarded by the
// pool's mutex.
type worker struct {
	p         *Pool
	slot      int
	pid       int
	cmd       *exec.Cmd
	conn      *wire.Conn
	startedAt time.Time
	limit     int // requests before recycling, 0 = no limit

	state      workerState // (p.mu)
	wasReady   bool        // (p.mu)
	inflight   int         // (p.mu) requests dispatched and not released
	served     uint64      // (p.mu)
	killReason string      // (p.mu)

	mu     sync.Mutex // guards calls and nextID
	calls  map[uint32]*Call
	nextID uint32

	ready      chan struct{} // closed on the Ready frame
	exited     chan struct{} // closed once the process has been waited for
	exitStatus string        // set before exited is closed
	out        *tail         // the end of the worker's output, for start-up errors
	killOnce   sync.Once
	shutOnce   sync.Once
}

func startWorker(p *Pool, slot int) (*worker, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("worker socket: %w", err)
	}
	parent := os.NewFile(uintptr(fds[0]), "hornbeam-worker")
	child := os.NewFile(uintptr(fds[1]), "hornbeam-worker-child")
	defer child.Close()
	fc, err := net.FileConn(parent)
	parent.Close()
	if err != nil {
		return nil, fmt.Errorf("worker socket: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		fc.Close()
		return nil, fmt.Errorf("worker output pipe: %w", err)
	}
	args := []string{"-c", bootstrap, "3", strconv.Itoa(p.cfg.Threads), p.cfg.App}
	args = append(args, p.cfg.PythonPath...)
	cmd := exec.Command(p.cfg.Python, args...)
	env := p.cfg.Env
	if env == nil {
		env = os.Environ()
	}
	pyPath := p.cfg.RuntimeDir
	for _, kv := range env {
		if len(kv) > 11 && kv[:11] == "PYTHONPATH=" && kv[11:] != "" {
			pyPath += string(filepath.ListSeparator) + kv[11:]
		}
	}
	cmd.Env = append(append([]string(nil), env...), "PYTHONPATH="+pyPath, "PYTHONUNBUFFERED=1")
	cmd.ExtraFiles = []*os.File{child}
	cmd.Stdout, cmd.Stderr = outW, outW
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Ctrl-C reaches the server only
	if err := cmd.Start(); err != nil {
		fc.Close()
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("starting %s: %w", p.cfg.Python, err)
	}
	outW.Close()
	w := &worker{
		p:         p,
		slot:      slot,
		pid:       cmd.Process.Pid,
		cmd:       cmd,
		conn:      wire.NewConn(fc.(*net.UnixConn)),
		startedAt: time.Now(),
		limit:     p.jitteredLimit(),
		calls:     make(map[uint32]*Call),
		ready:     make(chan struct{}),
		exited:    make(chan struct{}),
		out:       &tail{n: 16 << 10},
	}
	p.wg.Add(1)
	logged := make(chan struct{})
	go w.copyOutput(outR, logged)
	go w.readLoop()
	go w.wait(logged)
	return w, nil
}

// copyOutput copies the worker's stdout and stderr to the error log, one line
// at a time, marked with its pid.
func (w *worker) copyOutput(r *os.File, done chan struct{}) {
	defer close(done)
	defer r.Close()
	br := bufio.NewReaderSize(r, 16<<10)
	prefix := "[worker " + strconv.Itoa(w.pid) + "] "
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			select {
			case <-w.ready:
			default:
				w.out.Write(line)
			}
			if line[len(line)-1] == '\n' {
				line = line[:len(line)-1]
			}
			w.p.cfg.ErrorLog.Print(prefix + string(line))
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}

func (w *worker) startOutput() string { return w.out.String() }

func (w *worker) wait(logged chan struct{}) {
	err := w.cmd.Wait()
	<-logged
	w.exitStatus = describeExit(w.cmd.ProcessState, err)
	w.conn.Close()
	close(w.exited)
	w.p.exited(w)
	w.p.wg.Done()
}

func describeExit(ps *os.ProcessState, err error) string {
	if ps == nil {
		return fmt.Sprintf("could not be waited for: %v", err)
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		sig := ws.Signal()
		s := fmt.Sprintf("was killed by signal %d (%s, %s)", int(sig), signalName(sig), sig)
		if ws.CoreDump() {
			s += ", core dumped"
		}
		return s
	}
	if ps.ExitCode() == exitImportFailed {
		return "exited with status 3: the app failed to import"
	}
	return fmt.Sprintf("exited with status %d", ps.ExitCode())
}

func signalName(s syscall.Signal) string {
	names := map[syscall.Signal]string{
		syscall.SIGABRT: "SIGABRT", syscall.SIGBUS: "SIGBUS", syscall.SIGFPE: "SIGFPE",
		syscall.SIGHUP: "SIGHUP", syscall.SIGILL: "SIGILL", syscall.SIGINT: "SIGINT",
		syscall.SIGKILL: "SIGKILL", syscall.SIGPIPE: "SIGPIPE", syscall.SIGQUIT: "SIGQUIT",
		syscall.SIGSEGV: "SIGSEGV", syscall.SIGTERM: "SIGTERM", syscall.SIGUSR1: "SIGUSR1",
		syscall.SIGUSR2: "SIGUSR2", syscall.SIGXCPU: "SIGXCPU", syscall.SIGSYS: "SIGSYS",
	}
	if n, ok := names[s]; ok {
		return n
	}
	return "SIG" + strconv.Itoa(int(s))
}

// readLoop reads frames from the worker and routes them to their calls.
func (w *worker) readLoop() {
	var err error
	for {
		var f wire.Frame
		f, err = w.conn.ReadFrame()
		if err != nil {
			break
		}
		switch f.Type {
		case wire.Ready:
			select {
			case <-w.ready:
			default:
				close(w.ready)
			}
		case wire.StateCall:
			reply := stateUnavailable
			if w.p.cfg.StateCall != nil {
				reply = w.p.cfg.StateCall(f.Payload)
			}
			if werr := w.conn.WriteFrame(wire.StateReply, f.ID, reply, nil); werr != nil {
				err = werr
			}
		default:
			w.mu.Lock()
			c := w.calls[f.ID]
			w.mu.Unlock()
			if c == nil {
				if f.FD != nil {
					f.FD.Close()
				}
				continue // the call was abandoned (client gone, timed out)
			}
			select {
			case c.frames <- f:
			case <-c.done:
				if f.FD != nil {
					f.FD.Close()
				}
			}
		}
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		w.p.cfg.ErrorLog.Printf("worker %d: %v; killing it", w.pid, err)
		w.kill()
	}
	w.mu.Lock()
	for id, c := range w.calls {
		close(c.frames)
		delete(w.calls, id)
	}
	w.calls = nil
	w.mu.Unlock()
}

// stateUnavailable is a StateReply saying no store is configured:
// marshal (False, "RuntimeError", "...").
var stateUnavailable = []byte("(\x03\x00\x00\x00Fu\x0c\x00\x00\x00RuntimeErroru\x1a\x00\x00\x00no state store is attached")

func (w *worker) send(environ []byte, body *os.File, label string) (*Call, error) {
	c := &Call{w: w, frames: make(chan wire.Frame, 16), done: make(chan struct{}), label: label, start: time.Now()}
	w.mu.Lock()
	if w.calls == nil {
		w.mu.Unlock()
		return nil, ErrWorkerDied
	}
	w.nextID++
	c.id = w.nextID
	w.calls[c.id] = c
	w.mu.Unlock()
	typ := wire.Request
	if body != nil {
		typ = wire.RequestFD
	}
	if err := w.conn.WriteFrame(typ, c.id, environ, body); err != nil {
		w.forget(c)
		return nil, fmt.Errorf("%w: %v", ErrWorkerDied, err)
	}
	return c, nil
}

func (w *worker) forget(c *Call) {
	w.mu.Lock()
	if w.calls != nil {
		delete(w.calls, c.id)
	}
	w.mu.Unlock()
}

func (w *worker) heldLabels() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, c := range w.calls {
		out = append(out, c.label)
	}
	return out
}

// oldest returns the label and start of the longest-running request held.
func (w *worker) oldest() (string, time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var label string
	var start time.Time
	for _, c := range w.calls {
		if start.IsZero() || c.start.Before(start) {
			label, start = c.label, c.start
		}
	}
	return label, start
}

func (w *worker) shutdown() {
	w.shutOnce.Do(func() {
		go func() {
			if err := w.conn.WriteFrame(wire.Shutdown, 0, nil, nil); err != nil {
				w.kill()
			}
		}()
	})
}

func (w *worker) kill() {
	w.killOnce.Do(func() { w.cmd.Process.Signal(syscall.SIGKILL) })
}

// dumpStacksAndKill asks faulthandler for every thread's stack (SIGUSR1,
// registered by the worker), gives it a moment to write, then kills.
func (w *worker) dumpStacksAndKill() {
	w.cmd.Process.Signal(syscall.SIGUSR1)
	go func() {
		select {
		case <-w.exited:
		case <-time.After(300 * time.Millisecond):
			w.kill()
		}
	}()
}
