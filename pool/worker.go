package pool

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hornbeam-go/hornbeam/errlog"
	"github.com/hornbeam-go/hornbeam/internal/wire"
	"github.com/hornbeam-go/hornbeam/pymarshal"
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

// The Python the zygote runs; see python/hornbeam/_worker.py. Workers are
// forked by it: with Preload it has imported the app; without, each worker
// imports the app itself after the fork (fresh code on every start).
const (
	zygoteBootstrap    = "from hornbeam._worker import zygote; zygote(preload=False)"
	zygotePreBootstrap = "from hornbeam._worker import zygote; zygote(preload=True)"
	// With Preload and hosted embedded workers: %q is the worker library.
	zygoteHostedBootstrap = "from hornbeam._worker import zygote; zygote(preload=True, hosted=%q)"
)

// exitImportFailed is the worker's exit status when the app does not import.
const exitImportFailed = 3

// worker is one Python process. Fields marked (p.mu) are guarded by the
// pool's mutex.
type worker struct {
	p         *Pool
	parent    *worker // the zygote that forked it
	slot      int
	pid       int
	conn      *wire.Conn
	stateConn *wire.CallConn // the state socket
	cpu       int            // the CPU it is pinned to, -1: none
	startedAt time.Time
	limit     int // requests before recycling, 0 = no limit

	state       workerState    // (p.mu)
	subs        map[string]int // (p.mu) an embedded worker's subscribers by topic (pubsub.go)
	wasReady    bool           // (p.mu)
	inflight    int            // (p.mu) requests dispatched and not released
	served      uint64         // (p.mu)
	killReason  string         // (p.mu)
	standby     bool           // (p.mu) ready, but not yet its slot's current worker (Reload)
	stuck       int            // (p.mu) timed-out requests it still runs (Pool.Timeout)
	active      int            // (p.mu) embedded: requests it serves now (its Load frames)
	current     string         // (p.mu) embedded: its oldest running request (its Load frames)
	currentAt   time.Time      // (p.mu) embedded: when that request started
	inCall      atomic.Int32   // state calls it is making now (embedded: it runs Python, so it is busy)
	crashSignal atomic.Int32   // embedded: the fatal signal Go's runtime reported in its output

	mu     sync.Mutex // guards calls, nextID and forks
	calls  map[uint32]*Call
	nextID uint32
	forks  map[uint32]chan int // zygote only: Fork frames awaiting Forked
	lost   []string            // labels of the requests held when the connection ended

	ready      chan struct{} // closed on the Ready frame
	exited     chan struct{} // closed once the process has been waited for
	exitStatus string        // set before exited is closed
	out        *tail         // the end of the worker's output, for start-up errors
	logged     chan struct{} // closed once all its output is logged
	readDone   chan struct{} // closed when readLoop has returned
	killOnce   sync.Once
	shutOnce   sync.Once
	finishOnce sync.Once
}

// startWorker starts a worker for slot, forked by the zygote: a fork of an
// interpreter that has already imported the runtime costs a few ms, where a
// new interpreter took 40-50 ms of CPU, which --max-requests paid on every
// recycle.
func startWorker(p *Pool, slot int, zygote *worker) (w *worker, err error) {
	if err := p.track(&p.wg); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			p.wg.Done()
		}
	}()
	if p.cfg.Embedded != nil && !p.cfg.Preload {
		return startEmbedded(p, slot)
	}
	return p.forkWorker(slot, zygote)
}

// startEmbedded starts an embedded worker: the hornbeam binary in worker
// mode (or the interpreter hosting the worker library), given its control
// socket (fd 3), state socket (fd 4), the change table (fd 5), the access
// log pipe (fd 6) and the listeners (fd 7 on); /dev/null stands for what
// there is none of.
func startEmbedded(p *Pool, slot int) (*worker, error) {
	e := p.cfg.Embedded
	ch, err := newChannels(p, slot)
	if err != nil {
		return nil, err
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		ch.handedOver(false)
		return nil, err
	}
	defer null.Close()
	versions := p.cfg.StateVersions
	if versions == nil {
		versions = null
	}
	access, err := p.accessLogPipe()
	if err != nil {
		ch.handedOver(false)
		return nil, err
	}
	defer access.Close()
	limit := p.jitteredLimit()
	cmd := exec.Command(e.Executable, e.Args...)
	env := p.cfg.Env
	if env == nil {
		env = os.Environ()
	}
	cmd.Env = append(append(append([]string(nil), env...), e.Env(limit, ch.cpu, slot)...), embeddedEnv...)
	cmd.ExtraFiles = append([]*os.File{ch.child, ch.stateChild, versions, access}, e.Listeners...)
	w, err := runProcess(p, slot, cmd, ch)
	if err != nil {
		return nil, err
	}
	w.limit = 0 // the worker counts its requests itself and sends Retire
	return w, nil
}

// embeddedEnv is set for every embedded worker. PYTHONFAULTHANDLER: a
// fatal signal in the app's native code prints the Python traceback first
// (then Go's runtime reports the signal and exits with status 2; see
// crashReport).
var embeddedEnv = []string{"GOMAXPROCS=2", "PYTHONFAULTHANDLER=1"}

// accessLogPipe returns the write end of a pipe whose lines are copied to
// the access log, or /dev/null when there is no access log; the caller
// closes it once the worker has it.
func (p *Pool) accessLogPipe() (*os.File, error) {
	e := p.cfg.Embedded
	if e.AccessLog == nil {
		return os.Open(os.DevNull)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("access log pipe: %w", err)
	}
	go p.copyAccessLog(r, e.AccessLog)
	return w, nil
}

// runProcess starts cmd for slot with the channels ch (its output to their
// pipe, in a process group of its own so that Ctrl-C reaches the server
// only) and reaps it when it exits.
func runProcess(p *Pool, slot int, cmd *exec.Cmd, ch *channels) (*worker, error) {
	cmd.Stdout, cmd.Stderr = ch.outW, ch.outW
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err := cmd.Start()
	ch.handedOver(err == nil)
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	w := newWorker(p, slot, cmd.Process.Pid, ch, nil)
	go func() {
		err := cmd.Wait()
		status := fmt.Sprintf("could not be waited for: %v", err)
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
			status = describeExit(ws)
		}
		w.finish(status)
	}()
	return w, nil
}

// track counts a process about to start in wg, unless the pool is
// stopping: Stop waits on the counts once it has set stopping, so none is
// added after that.
func (p *Pool) track(wg *sync.WaitGroup) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopping {
		return ErrStopped
	}
	wg.Add(1)
	return nil
}

// channels are what a new worker process is given: its ends of the request
// socket and the state socket, the write end of the pipe for its stdout
// and stderr, and the CPU it runs on (-1: any). The server keeps uc, state
// and outR.
type channels struct {
	cpu, slot         int
	uc                *net.UnixConn
	state             *wire.CallConn
	child, stateChild *os.File
	outR, outW        *os.File
}

func newChannels(p *Pool, slot int) (ch *channels, err error) {
	ch = &channels{cpu: -1, slot: slot}
	defer func() {
		if err != nil {
			ch.handedOver(false)
		}
	}()
	fds, err := socketpair("worker")
	if err != nil {
		return ch, err
	}
	ch.child = os.NewFile(uintptr(fds[1]), "hornbeam-worker-child")
	parent := os.NewFile(uintptr(fds[0]), "hornbeam-worker")
	fc, err := net.FileConn(parent)
	parent.Close()
	if err != nil {
		return ch, fmt.Errorf("worker socket: %w", err)
	}
	ch.uc = fc.(*net.UnixConn)
	if fds, err = socketpair("worker state"); err != nil {
		return ch, err
	}
	ch.stateChild = os.NewFile(uintptr(fds[1]), "hornbeam-worker-state-child")
	if ch.state, err = wire.NewCallConn(fds[0]); err != nil {
		return ch, err
	}
	ch.outR, ch.outW, err = os.Pipe()
	if err != nil {
		return ch, fmt.Errorf("worker output pipe: %w", err)
	}
	if p.cfg.CPUAffinity && slot >= 0 {
		if ch.cpu, err = slotCPU(slot); err != nil {
			return ch, err
		}
	}
	return ch, nil
}

// socketpair returns the two ends of a new Unix stream socket pair.
func socketpair(name string) ([2]int, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return [2]int{}, fmt.Errorf("%s socket: %w", name, err)
	}
	return [2]int{fds[0], fds[1]}, nil
}

// handedOver closes the child's ends once the child has them; ok false
// also closes the server's ends (the child was never started).
func (c *channels) handedOver(ok bool) {
	for _, f := range []*os.File{c.child, c.stateChild, c.outW} {
		if f != nil {
			f.Close()
		}
	}
	if ok {
		return
	}
	if c.uc != nil {
		c.uc.Close()
	}
	if c.state != nil {
		c.state.Close()
	}
	if c.outR != nil {
		c.outR.Close()
	}
}

// startProcess runs a new interpreter with the given bootstrap code: the
// zygote (slot -1).
func startProcess(p *Pool, slot int, code string) (*worker, error) {
	ch, err := newChannels(p, slot)
	if err != nil {
		return nil, err
	}
	args := []string{"-c", code, "3", "4", strconv.Itoa(p.cfg.Threads), p.cfg.App}
	args = append(args, p.cfg.PythonPath...)
	cmd := exec.Command(p.cfg.Python, args...)
	env := p.cfg.Env
	if env == nil {
		env = os.Environ()
	}
	pyPath := p.cfg.RuntimeDir
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PYTHONPATH="); ok && v != "" {
			pyPath += string(filepath.ListSeparator) + v
		}
	}
	cmd.Env = append(append([]string(nil), env...), "PYTHONPATH="+pyPath, "PYTHONUNBUFFERED=1")
	if ch.cpu >= 0 {
		cmd.Env = append(cmd.Env, "HORNBEAM_CPU="+strconv.Itoa(ch.cpu))
	}
	cmd.ExtraFiles = []*os.File{ch.child, ch.stateChild}
	if p.cfg.StateVersions != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, p.cfg.StateVersions)
		cmd.Env = append(cmd.Env, "HORNBEAM_STATE_VERSIONS=5")
	}
	if e := p.cfg.Embedded; e != nil {
		// The zygote of hosted embedded workers holds what every worker
		// inherits as is: the change table (fd 5) and the listeners (fd 7
		// on); each fork brings the rest.
		null, err := os.Open(os.DevNull)
		if err != nil {
			ch.handedOver(false)
			return nil, err
		}
		defer null.Close()
		if p.cfg.StateVersions == nil {
			cmd.ExtraFiles = append(cmd.ExtraFiles, null)
		}
		cmd.ExtraFiles = append(append(cmd.ExtraFiles, null), e.Listeners...)
		cmd.Env = append(cmd.Env, embeddedEnv...)
	}
	return runProcess(p, slot, cmd, ch)
}

// copyAccessLog copies an embedded worker's access log lines to out, whole
// lines only, until the worker has gone.
func (p *Pool) copyAccessLog(r *os.File, out io.Writer) {
	defer r.Close()
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			p.accessMu.Lock()
			out.Write(line)
			p.accessMu.Unlock()
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}

// forkWorker asks the zygote z (nil: the current one) for a new worker.
func (p *Pool) forkWorker(slot int, z *worker) (*worker, error) {
	var err error
	if z == nil {
		if z, err = p.zygoteProcess(); err != nil {
			return nil, err
		}
	}
	ch, err := newChannels(p, slot)
	if err != nil {
		return nil, err
	}
	var access *os.File // an embedded worker's access log pipe
	if p.cfg.Embedded != nil {
		if access, err = p.accessLogPipe(); err != nil {
			ch.handedOver(false)
			return nil, err
		}
		defer access.Close()
	}
	pid, err := z.fork(ch, access)
	ch.handedOver(err == nil)
	if err != nil {
		return nil, err
	}
	w := newWorker(p, slot, pid, ch, z)
	if p.cfg.Embedded != nil {
		w.limit = 0 // the worker counts its requests itself and sends Retire
	}
	return w, nil
}

// fork sends a Fork frame to the zygote w and waits for the new pid. The
// payload is the CPU to pin the worker to (None: any); for an embedded
// worker (access is its access log pipe) it is the worker's environment,
// whose configuration names the CPU (ForkEmbedded).
func (w *worker) fork(c *channels, access *os.File) (int, error) {
	var v any // None: any CPU
	if c.cpu >= 0 {
		v = int64(c.cpu)
	}
	typ, files := wire.Fork, []*os.File{c.child, c.stateChild, c.outW}
	if access != nil {
		typ = wire.ForkEmbedded
		v = strings.Join(w.p.cfg.Embedded.Env(w.p.jitteredLimit(), c.cpu, c.slot), "\x00")
		files = append(files, access)
	}
	payload, err := pymarshal.Marshal(v)
	if err != nil {
		return 0, err
	}
	ch := make(chan int, 1)
	w.mu.Lock()
	w.nextID++
	id := w.nextID
	if w.forks == nil {
		w.forks = map[uint32]chan int{}
	}
	w.forks[id] = ch
	w.mu.Unlock()
	if err := w.conn.WriteFrame(typ, id, payload, files...); err != nil {
		return 0, fmt.Errorf("asking the zygote to fork: %w", err)
	}
	select {
	case pid := <-ch:
		return pid, nil
	case <-w.exited:
		return 0, fmt.Errorf("the zygote %s", w.exitStatus)
	case <-time.After(10 * time.Second):
		return 0, errors.New("the zygote did not fork a worker within 10s")
	}
}

// newWorker tracks a started process: a worker forked by parent, or the
// zygote (slot -1, parent nil).
func newWorker(p *Pool, slot, pid int, ch *channels, parent *worker) *worker {
	w := &worker{
		p:         p,
		parent:    parent,
		slot:      slot,
		pid:       pid,
		conn:      wire.NewConn(ch.uc),
		stateConn: ch.state,
		cpu:       ch.cpu,
		startedAt: time.Now(),
		limit:     p.jitteredLimit(),
		calls:     make(map[uint32]*Call),
		ready:     make(chan struct{}),
		exited:    make(chan struct{}),
		out:       &tail{n: 16 << 10},
		logged:    make(chan struct{}),
		readDone:  make(chan struct{}),
	}
	if parent != nil {
		p.mu.Lock()
		p.forked[pid] = w
		p.mu.Unlock()
	}
	go w.copyOutput(ch.outR)
	go w.readLoop()
	go w.serveState()
	return w
}

// finish records that the process has exited (once).
func (w *worker) finish(status string) {
	w.finishOnce.Do(func() {
		if e := w.p.cfg.Embedded; e != nil && e.Balance != nil && w.slot >= 0 {
			// Gone: it accepts no more (a replacement of the slot sets
			// the entry again with its next connection).
			e.Balance.WriteAt(make([]byte, 4), int64(w.slot)*4)
		}
		select {
		case <-w.logged:
		case <-time.After(2 * time.Second): // a grandchild holds the pipe
		}
		if sig := syscall.Signal(w.crashSignal.Load()); sig != 0 && status == "exited with status 2" {
			// An embedded worker: Go's runtime caught the signal, reported
			// it and exited (copyOutput found its report).
			status = fmt.Sprintf("was killed by signal %d (%s, caught by Go's runtime, which exited with status 2)", int(sig), signalName(sig))
		}
		w.exitStatus = status
		w.conn.Close()
		w.stateConn.Shutdown() // a grandchild may hold the worker's end
		<-w.readDone           // the requests it held are failed and noted
		close(w.exited)
		if w.slot < 0 {
			w.p.zygoteExited(w)
			w.p.zwg.Done()
			return
		}
		w.p.mu.Lock()
		delete(w.p.forked, w.pid)
		w.p.mu.Unlock()
		w.p.exited(w)
		w.p.wg.Done()
	})
}

// copyOutput copies the worker's stdout and stderr to the error log, one line
// at a time, marked with its pid (see outputLines for the level).
func (w *worker) copyOutput(r *os.File) {
	defer close(w.logged)
	defer r.Close()
	br := bufio.NewReaderSize(r, 16<<10)
	out := outputLines{prefix: "[worker " + strconv.Itoa(w.pid) + "] "}
	var crash goCrash // an embedded worker is a Go program
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			select {
			case <-w.ready:
			default:
				w.out.Write(line)
			}
			if w.p.cfg.Embedded == nil || crash.keep(line) {
				w.p.cfg.ErrorLog.Print(out.format(line))
			}
		}
		if err != nil && err != bufio.ErrBufferFull {
			break
		}
	}
	if crash.signal != 0 {
		w.crashSignal.Store(int32(crash.signal))
	}
	if crash.dropped > 0 {
		w.p.cfg.ErrorLog.Printf("%s(%d more lines of Go's crash report not shown: the other goroutines and the registers)", out.prefix, crash.dropped)
	}
}

// goCrash follows an embedded worker's output for Go's report of a fatal
// signal (a SIGSEGV in the app's native code: Python's faulthandler prints
// the Python traceback first, then Go's runtime reports the signal and
// exits with status 2). It keeps the report's header and the goroutine
// that took the signal, and drops the rest (the stacks of every other
// goroutine, the registers: some hundred lines that say nothing about the
// app).
type goCrash struct {
	state   int // 0: before a report, 1: a "SIGxxx: ..." line seen, 2: the header, 3: the faulting goroutine, 4: the rest
	pending syscall.Signal
	signal  syscall.Signal // the signal reported, once its "PC=" line confirms the report
	dropped int
}

func (c *goCrash) keep(line []byte) bool {
	switch c.state {
	case 0, 1:
		if c.state == 1 && bytes.HasPrefix(line, []byte("PC=0x")) {
			c.signal, c.state = c.pending, 2
			return true
		}
		c.state = 0
		if i := bytes.Index(line, []byte(": ")); i > 3 && bytes.HasPrefix(line, []byte("SIG")) {
			if sig, ok := signalByName[string(line[:i])]; ok {
				c.pending, c.state = sig, 1
			}
		}
		return true
	case 2:
		if bytes.HasPrefix(line, []byte("goroutine ")) {
			c.state = 3
		}
		return true
	case 3:
		if len(bytes.TrimSpace(line)) == 0 {
			c.state = 4
		}
		return true
	}
	c.dropped++
	return false
}

// outputLines formats a worker's output lines for the error log. A line is
// INFO, unless it starts with a level prefix ("debug: ", "warning: ",
// "error: ", as an embedded worker's own messages do): the prefix is moved
// in front of the pid marker, where package errlog reads it. The lines of a
// Python traceback, from its "Traceback (most recent call last):" to its
// exception line, are never mapped (an exception class named error would
// print "error: ..."), nor is the rest of a line longer than the read
// buffer.
type outputLines struct {
	prefix    string // "[worker PID] "
	traceback bool   // inside a traceback, before its exception line
	partial   bool   // the previous piece did not end its line
}

const tracebackHeader = "Traceback (most recent call last):"

func (o *outputLines) format(line []byte) string {
	partial := o.partial
	o.partial = line[len(line)-1] != '\n'
	if !o.partial {
		line = line[:len(line)-1]
	}
	switch {
	case partial:
		return o.prefix + string(line)
	case o.traceback:
		// Frames and source lines are indented; the first line that is
		// not is the exception, which ends the traceback (a chained one
		// starts with its own header).
		if len(line) > 0 && line[0] != ' ' && line[0] != '\t' {
			o.traceback = false
		}
		return o.prefix + string(line)
	case bytes.HasPrefix(line, []byte(tracebackHeader)):
		o.traceback = true
		return o.prefix + string(line)
	}
	for _, lp := range [...]string{errlog.ErrorPrefix, errlog.WarningPrefix, errlog.DebugPrefix} {
		if rest, ok := bytes.CutPrefix(line, []byte(lp)); ok {
			return lp + o.prefix + string(rest)
		}
	}
	return o.prefix + string(line)
}

func (w *worker) startOutput() string { return w.out.String() }

func describeExit(ws syscall.WaitStatus) string {
	if ws.Signaled() {
		sig := ws.Signal()
		s := fmt.Sprintf("was killed by signal %d (%s, %s)", int(sig), signalName(sig), sig)
		if ws.CoreDump() {
			s += ", core dumped"
		}
		return s
	}
	if ws.ExitStatus() == exitImportFailed {
		return "exited with status 3: the app failed to import"
	}
	return fmt.Sprintf("exited with status %d", ws.ExitStatus())
}

var signalNames = map[syscall.Signal]string{
	syscall.SIGABRT: "SIGABRT", syscall.SIGBUS: "SIGBUS", syscall.SIGFPE: "SIGFPE",
	syscall.SIGHUP: "SIGHUP", syscall.SIGILL: "SIGILL", syscall.SIGINT: "SIGINT",
	syscall.SIGKILL: "SIGKILL", syscall.SIGPIPE: "SIGPIPE", syscall.SIGQUIT: "SIGQUIT",
	syscall.SIGSEGV: "SIGSEGV", syscall.SIGTERM: "SIGTERM", syscall.SIGUSR1: "SIGUSR1",
	syscall.SIGUSR2: "SIGUSR2", syscall.SIGXCPU: "SIGXCPU", syscall.SIGSYS: "SIGSYS",
}

// signalByName holds the signals Go's runtime reports as fatal.
var signalByName = map[string]syscall.Signal{
	"SIGABRT": syscall.SIGABRT, "SIGBUS": syscall.SIGBUS, "SIGFPE": syscall.SIGFPE,
	"SIGILL": syscall.SIGILL, "SIGSEGV": syscall.SIGSEGV, "SIGSYS": syscall.SIGSYS,
	"SIGTRAP": syscall.SIGTRAP,
}

func signalName(s syscall.Signal) string {
	if n, ok := signalNames[s]; ok {
		return n
	}
	if s == syscall.SIGTRAP {
		return "SIGTRAP"
	}
	return "SIG" + strconv.Itoa(int(s))
}

// serveState answers the worker's state calls on its state socket until the
// worker closes it or finish shuts it down. A malformed call kills the
// worker, as on the request socket.
func (w *worker) serveState() {
	call := w.p.cfg.StateCall
	if call == nil {
		call = func([]byte) []byte { return stateUnavailable }
	}
	if w.cpu >= 0 {
		if err := pinThread(w.cpu); err != nil {
			w.p.cfg.ErrorLog.Printf("warning: worker %d: %v", w.pid, err)
		}
	}
	if w.p.cfg.Embedded != nil {
		// The master learns an embedded worker's requests from its Load
		// frames, which may come after a state call made by a request
		// that just started: a worker calling is running Python, busy.
		inner := call
		call = func(payload []byte) []byte {
			w.inCall.Add(1)
			defer w.inCall.Add(-1)
			return inner(payload)
		}
	}
	if err := w.stateConn.Serve(call); err != nil {
		w.p.cfg.ErrorLog.Printf("error: worker %d: state socket: %v; killing it", w.pid, err)
		w.kill()
	}
}

// readLoop reads frames from the worker and routes them to their calls.
// Consecutive frames of one call that arrive together (a whole short
// response is usually one read) are delivered as one batch: one wake-up of
// the handler instead of one per frame.
func (w *worker) readLoop() {
	defer close(w.readDone)
	var (
		err   error
		batch []wire.Frame
		to    *Call
	)
	flush := func() {
		if to == nil {
			return
		}
		select {
		case to.frames <- batch:
		case <-to.done:
			discard(batch)
		}
		batch, to = nil, nil
	}
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
		case wire.Forked:
			pid, _ := pymarshal.Unmarshal(f.Payload)
			w.mu.Lock()
			ch := w.forks[f.ID]
			delete(w.forks, f.ID)
			w.mu.Unlock()
			if n, ok := pid.(int64); ok && ch != nil {
				ch <- int(n)
			}
		case wire.Load: // an embedded worker's counts
			v, _ := pymarshal.Unmarshal(f.Payload)
			if t, ok := v.(pymarshal.Tuple); ok && len(t) >= 3 {
				served, _ := t[0].(int64)
				active, _ := t[1].(int64)
				var label string
				var start time.Time
				if len(t) >= 4 { // the oldest running request: (label, microseconds), or None
					if cur, ok := t[3].(pymarshal.Tuple); ok && len(cur) == 2 {
						label, _ = cur[0].(string)
						us, _ := cur[1].(int64)
						start = time.Now().Add(-time.Duration(us) * time.Microsecond)
					}
				}
				w.p.mu.Lock()
				w.served, w.active = uint64(served), int(active)
				w.current, w.currentAt = label, start
				w.p.mu.Unlock()
				obs, _ := t[2].([]byte)
				if observe := w.p.cfg.Embedded.Observe; observe != nil {
					for ; len(obs) >= 8; obs = obs[8:] {
						status := binary.LittleEndian.Uint32(obs)
						us := binary.LittleEndian.Uint32(obs[4:])
						observe(int(status), time.Duration(us)*time.Microsecond)
					}
				}
			}
		case wire.Subscribers: // an embedded worker's pub/sub subscribers
			w.subscribers(f.Payload)
		case wire.Retire: // an embedded worker asks to be replaced
			v, _ := pymarshal.Unmarshal(f.Payload)
			reason, _ := v.(string)
			w.p.mu.Lock()
			w.p.recycleLocked(w, reason)
			w.p.mu.Unlock()
		case wire.ChildExit:
			v, _ := pymarshal.Unmarshal(f.Payload)
			if t, ok := v.(pymarshal.Tuple); ok && len(t) == 2 {
				pid, _ := t[0].(int64)
				status, _ := t[1].(int64)
				w.p.childExited(int(pid), syscall.WaitStatus(status))
			}
		default:
			w.mu.Lock()
			c := w.calls[f.ID]
			w.mu.Unlock()
			if c != to {
				flush()
			}
			if c == nil {
				f.Discard() // the call was abandoned (client gone, timed out)
				continue
			}
			to = c
			batch = append(batch, f)
		}
		if !w.conn.Buffered() {
			flush()
		}
	}
	flush()
	if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		w.p.cfg.ErrorLog.Printf("error: worker %d: %v; killing it", w.pid, err)
		w.kill()
	}
	// The worker is gone: take it out of rotation at once, before its exit
	// is reaped, so no request is sent to it meanwhile.
	w.p.mu.Lock()
	if w.state == stateReady {
		w.state = stateDead // (a draining worker stays draining: its exit is expected)
	}
	w.p.mu.Unlock()
	w.mu.Lock()
	for id, c := range w.calls {
		w.lost = append(w.lost, c.label)
		close(c.frames)
		delete(w.calls, id)
	}
	w.calls = nil
	w.mu.Unlock()
	if w.parent != nil {
		// A forked worker's exit status comes from the zygote; if that
		// never arrives (the zygote is gone), make sure it is dead.
		go func() {
			select {
			case <-w.exited:
			case <-time.After(2 * time.Second):
				syscall.Kill(w.pid, syscall.SIGKILL)
				w.finish("exited (its status is unknown: the zygote is gone)")
			}
		}()
	}
}

func discard(frames []wire.Frame) {
	for i := range frames {
		frames[i].Discard()
	}
}

// stateUnavailable is the StateReply when no store is attached.
var stateUnavailable, _ = pymarshal.Marshal(pymarshal.Tuple{false, "RuntimeError", "no state store is attached"})

func (w *worker) send(environ []byte, body *os.File, label string) (*Call, error) {
	c := &Call{w: w, frames: make(chan []wire.Frame, 16), done: make(chan struct{}), label: label, start: time.Now()}
	w.mu.Lock()
	if w.calls == nil {
		w.mu.Unlock()
		return nil, ErrWorkerDied
	}
	w.nextID++
	c.id = w.nextID
	w.calls[c.id] = c
	w.mu.Unlock()
	typ, fds := wire.Request, []*os.File(nil)
	if body != nil {
		typ, fds = wire.RequestFD, []*os.File{body}
	}
	if err := w.conn.WriteFrame(typ, c.id, environ, fds...); err != nil {
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
	out := append([]string(nil), w.lost...)
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
			// "restart" unless the whole server stops: an ASGI worker
			// closes its WebSockets with 1012 (service restart), not 1001.
			w.p.mu.Lock()
			why := []byte("restart")
			if w.p.stopping {
				why = nil
			}
			w.p.mu.Unlock()
			if err := w.conn.WriteFrame(wire.Shutdown, 0, why); err != nil {
				w.kill()
				return
			}
			if w.p.cfg.Embedded != nil && w.slot >= 0 {
				// It finishes its requests within the graceful timeout and
				// exits; one that does not is killed a little after.
				select {
				case <-w.exited:
				case <-time.After(w.p.cfg.GracefulTimeout + 5*time.Second):
					w.kill()
				}
			}
		}()
	})
}

// signal sends sig to the process unless it is known to have exited.
func (w *worker) signal(sig syscall.Signal) {
	select {
	case <-w.exited:
	default:
		syscall.Kill(w.pid, sig)
	}
}

func (w *worker) kill() {
	w.killOnce.Do(func() { w.signal(syscall.SIGKILL) })
}

// dumpStacksAndKill asks faulthandler for every thread's stack (SIGUSR1,
// registered by the worker), gives it a moment to write, then kills. With
// Config.AbortFirst, SIGABRT comes between (the worker_abort hook).
func (w *worker) dumpStacksAndKill() {
	w.signal(syscall.SIGUSR1)
	go func() {
		if w.p.cfg.AbortFirst {
			select {
			case <-w.exited:
				return
			case <-time.After(100 * time.Millisecond):
				w.signal(syscall.SIGABRT)
			}
		}
		select {
		case <-w.exited:
		case <-time.After(300 * time.Millisecond):
			w.kill()
		}
	}()
}
