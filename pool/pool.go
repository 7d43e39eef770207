// Package pool starts, feeds and supervises hornbeam's Python worker
// processes.
//
// A Pool keeps Config.Workers processes running the embedded Python runtime.
// Each worker is reached over its own multiplexed socket (package
// internal/wire) and holds up to Threads requests, plus one queued behind
// them so that a busy worker finds its next request already waiting.
// Requests go to the least-loaded ready worker; when every worker is full
// they wait in a FIFO queue.
//
// A worker that dies is replaced with backoff, and the requests it held fail
// with ErrWorkerDied. A worker that has served MaxRequests is replaced: the
// new one starts first, then the old one finishes what it holds and exits.
package pool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Errors a Call can end with.
var (
	// ErrWorkerDied means the worker exited or was killed while it held the
	// request.
	ErrWorkerDied = errors.New("worker died")
	// ErrStopped means the pool is stopping and takes no more requests.
	ErrStopped = errors.New("pool stopped")
)

// Config says how to run the workers.
type Config struct {
	Python            string        // interpreter to run (a path or a name on PATH)
	App               string        // "module:callable"
	Workers           int           // processes, at least 1
	Threads           int           // requests each worker runs at once, at least 1
	PythonPath        []string      // put in front of the app's sys.path
	MaxRequests       int           // recycle a worker after this many requests; 0 = never
	MaxRequestsJitter int           // add 0..jitter to MaxRequests per worker
	RuntimeDir        string        // directory holding the hornbeam Python package
	Env               []string      // environment of the workers; nil = this process's
	ErrorLog          *log.Logger   // worker output and supervision messages
	StartTimeout      time.Duration // how long a worker may take to import the app; 0 = 60s
	// MaxWorkerMemory recycles a worker gracefully once its resident memory
	// passes this many bytes; 0 = no bound.
	MaxWorkerMemory int64
	// Preload imports the app once, in a zygote process that forks the
	// workers: they share its memory copy-on-write and start fast.
	Preload bool
	// CPUAffinity runs worker slot i on the i-th CPU this process may use
	// (round robin), together with the server thread that answers its state
	// calls (see affinity_linux.go). Linux only.
	CPUAffinity bool
	// StateVersions, if set, is the state change table the workers map to
	// validate the state_get results they keep (fd 5, announced in
	// HORNBEAM_STATE_VERSIONS).
	StateVersions *os.File
	// StateCall answers a worker's StateCall payload with a StateReply
	// payload. Nil answers every call with an error.
	StateCall func(payload []byte) []byte
	// Embedded, when set, runs each worker as a hornbeam process that serves
	// HTTP itself with CPython loaded in process (package worker), instead
	// of a Python process fed requests over its socket. Do is not used then.
	Embedded *Embedded
	// GracefulTimeout bounds how long a worker that holds a timed-out
	// request may go on finishing its other requests before it is killed
	// (see Pool.Timeout); 0 = 30s.
	GracefulTimeout time.Duration
	// AbortFirst sends a worker that is killed for a stuck request SIGABRT
	// after its stack dump, a moment before SIGKILL: its Python side then
	// calls gunicorn.conf.py's worker_abort hook and exits (process mode).
	AbortFirst bool
}

// Embedded says how to start embedded workers (see package worker for what
// they inherit).
type Embedded struct {
	Executable string // the hornbeam binary
	// Args, when set, start the worker as Executable with these arguments
	// (a python3 that loads the worker as a shared library).
	Args []string
	// Library is the worker library when the workers are Config.Python
	// hosting it (Executable is then that interpreter): with Preload, a
	// zygote of that interpreter imports the app and forks the workers,
	// each of which then loads the library (no Go runtime runs before the
	// fork).
	Library string
	// Listeners are the sockets the workers serve, from fd 7 on. New
	// takes them over: it keeps copies of its own (see inheritable) and
	// closes these; Stop closes the copies.
	Listeners []*os.File
	// AccessLog receives the workers' access log lines (each worker writes
	// them to a pipe, fd 6, copied here line by line); nil: none.
	AccessLog io.Writer
	// Observe, when set, is given each request a worker served (its
	// status, 0 for a cut connection, and its duration), a Load frame at a
	// time: the traffic stats.
	Observe func(status int, d time.Duration)
	// Env returns the environment variables that configure a worker which
	// asks to be replaced after limit requests (0: never), runs on CPU
	// cpu (-1: any; --cpu-affinity) and serves slot.
	Env func(limit, cpu, slot int) []string
	// Balance, when set, is the table where each worker publishes how many
	// connections it holds, one int32 per slot (package worker,
	// balance.go): the pool clears a worker's entry when it exits.
	Balance *os.File
	// Unavailable, when set, is called with true once no worker is ready
	// and a restart has failed (the app does not start: nobody serves the
	// listeners, whose connections would wait in the backlog), and with
	// false when a worker is ready again or the pool stops. The server
	// may answer on the listeners meanwhile (Config().Embedded.Listeners).
	// Calls come one at a time, in order.
	Unavailable func(down bool)
}

// Pool is a set of supervised worker processes. Create it with New.
type Pool struct {
	cfg Config

	mu       sync.Mutex
	workers  []*worker // every live process, in slot order
	waiters  []chan *worker
	slots    []slotInfo
	stopping bool
	started  bool
	target   int             // (mu) workers wanted: Config.Workers, changed by Scale
	wg       sync.WaitGroup  // one per live worker process
	forked   map[int]*worker // (mu) workers forked by the zygote, by pid

	done     chan struct{} // closed by Stop
	accessMu sync.Mutex    // one access log line at a time (embedded workers)
	reloadMu sync.Mutex    // one Reload or Scale at a time

	filesClosed bool      // (mu) Stop has closed the copies of Embedded.Listeners
	down        bool      // (mu) Embedded.Unavailable was told true last
	downC       chan bool // to the goroutine that calls Embedded.Unavailable
	downD       chan struct{}

	zmu    sync.Mutex // serialises starting the zygote
	zygote *worker    // (mu) with Preload: the process that forks workers
	zwg    sync.WaitGroup
}

// slotInfo is the supervision record of one worker slot. The pool keeps
// exactly one current worker per slot below target: a worker that becomes
// ready for a slot supersedes the slot's other workers (they drain and
// exit), and only the death of the current worker starts a replacement, and
// only when none is already on its way. Whatever order deaths, recycles,
// reloads, timeouts and scaling happen in, that converges on one worker
// per slot.
type slotInfo struct {
	restarts int
	backoff  time.Duration
	retiring bool    // a recycle of the slot's worker is under way
	current  *worker // the worker serving the slot; nil while none is
	spawning int     // replacements being started for the slot (recycle, timeout, restart)
}

// New checks cfg and returns a pool; Start launches it.
func New(cfg Config) (*Pool, error) {
	if cfg.Workers < 1 {
		return nil, fmt.Errorf("pool: workers must be at least 1, got %d", cfg.Workers)
	}
	if cfg.Threads < 1 {
		return nil, fmt.Errorf("pool: threads must be at least 1, got %d", cfg.Threads)
	}
	if cfg.ErrorLog == nil {
		cfg.ErrorLog = log.New(os.Stderr, "", log.LstdFlags)
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 60 * time.Second
	}
	if cfg.GracefulTimeout <= 0 {
		cfg.GracefulTimeout = 30 * time.Second
	}
	path, err := exec.LookPath(cfg.Python)
	if err != nil {
		return nil, fmt.Errorf("python interpreter %q not found: install Python 3 or pass --python /usr/bin/python3 (or --venv DIR)", cfg.Python)
	}
	cfg.Python = path
	if cfg.Embedded != nil {
		e := *cfg.Embedded
		e.Listeners = make([]*os.File, len(cfg.Embedded.Listeners))
		for i, f := range cfg.Embedded.Listeners {
			if e.Listeners[i], err = inheritable(f); err != nil {
				for _, c := range e.Listeners[:i] {
					c.Close()
				}
				return nil, err
			}
		}
		for _, f := range cfg.Embedded.Listeners {
			f.Close() // the pool has its copies (closed by Stop)
		}
		cfg.Embedded = &e
	}
	if cfg.Embedded != nil && cfg.Embedded.Library == "" && cfg.Preload {
		cfg.Preload = false
		cfg.ErrorLog.Printf("warning: --preload does nothing in the embedded worker mode with libpython loaded: a worker is a Go process, which cannot fork once its runtime runs, so each worker imports the app itself; with the worker library (hornbeam-worker.so beside the binary) it preloads (README \"Worker modes\")")
	}
	p := &Pool{cfg: cfg, slots: make([]slotInfo, cfg.Workers), forked: map[int]*worker{}, target: cfg.Workers, done: make(chan struct{})}
	if cfg.Embedded != nil && cfg.Embedded.Unavailable != nil {
		downC, downD := make(chan bool, 64), make(chan struct{})
		p.downC, p.downD = downC, downD
		go func() { // the channels, not the fields: Stop sets p.downC to nil
			defer close(downD)
			for down := range downC {
				cfg.Embedded.Unavailable(down)
			}
		}()
	}
	return p, nil
}

// setDownLocked tells Embedded.Unavailable that no worker can serve
// (down, only if none is ready) or that one can again.
func (p *Pool) setDownLocked(down bool) {
	if p.downC == nil || p.down == down {
		return
	}
	if down {
		for _, w := range p.workers {
			if w.state == stateReady {
				return
			}
		}
	}
	p.down = down
	p.downC <- down // a transition at a time: the buffer is never full
}

// inheritable returns a copy of the listening socket f for the embedded
// workers, which os/exec can pass to each worker it starts without putting
// the socket in blocking mode. The mode belongs to the socket, shared by
// every process that holds it, and os.File.Fd (which os/exec calls) sets
// blocking mode on a File that net made (TCPListener.File): a worker's
// accept loop would then sit in accept(2), where closing the listener does
// not stop it, and a retiring worker would wait for a connection it should
// no longer take. A File made by os.NewFile on a blocking descriptor is
// left alone by Fd; the socket is then made non-blocking again.
func inheritable(f *os.File) (*os.File, error) {
	sc, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("listener %s: %w", f.Name(), err)
	}
	nfd, derr := -1, error(nil)
	if err := sc.Control(func(fd uintptr) { nfd, derr = syscall.Dup(int(fd)) }); err != nil {
		return nil, fmt.Errorf("listener %s: %w", f.Name(), err)
	}
	if derr != nil {
		return nil, fmt.Errorf("listener %s: dup: %w", f.Name(), derr)
	}
	syscall.CloseOnExec(nfd)
	if err := syscall.SetNonblock(nfd, false); err != nil {
		syscall.Close(nfd)
		return nil, fmt.Errorf("listener %s: %w", f.Name(), err)
	}
	nf := os.NewFile(uintptr(nfd), f.Name())
	if err := syscall.SetNonblock(nfd, true); err != nil {
		nf.Close()
		return nil, fmt.Errorf("listener %s: %w", f.Name(), err)
	}
	return nf, nil
}

// Config returns the configuration the pool runs with.
func (p *Pool) Config() Config { return p.cfg }

// StartError is returned by Start when a worker could not import the app.
type StartError struct {
	App    string
	Status string // how the worker exited
	Output string // the end of what the worker printed: the Python traceback
}

func (e *StartError) Error() string {
	out := strings.TrimRight(e.Output, "\n")
	if out == "" {
		out = "it printed nothing (is --python a Python 3 interpreter?)"
	}
	last := out
	if i := strings.LastIndexByte(out, '\n'); i >= 0 {
		last = out[i+1:]
	}
	return fmt.Sprintf("cannot load the app %q (worker %s): %s", e.App, e.Status, last)
}

// Start launches the workers and waits until every one has imported the app.
// If one cannot, Start stops the others and returns a *StartError carrying
// the Python traceback.
func (p *Pool) Start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.StartTimeout)
	defer cancel()
	if p.cfg.Embedded == nil || p.cfg.Preload {
		if _, err := p.zygoteProcess(); err != nil {
			p.Stop(context.Background())
			return err
		}
	}
	type result struct {
		w   *worker
		err error
	}
	results := make(chan result, p.cfg.Workers)
	for i := 0; i < p.cfg.Workers; i++ {
		go func(slot int) {
			w, err := p.spawn(ctx, slot)
			results <- result{w, err}
		}(i)
	}
	var firstErr error
	for i := 0; i < p.cfg.Workers; i++ {
		r := <-results
		if r.err != nil && firstErr == nil {
			firstErr = r.err
			cancel()
		}
	}
	if firstErr != nil {
		p.Stop(context.Background())
		return firstErr
	}
	p.mu.Lock()
	p.started = true
	p.mu.Unlock()
	if p.cfg.MaxWorkerMemory > 0 {
		go p.watchMemory()
	}
	return nil
}

// spawn starts a worker for slot, waits for it to be ready and makes it the
// slot's current worker (see activateLocked).
func (p *Pool) spawn(ctx context.Context, slot int) (*worker, error) {
	return p.spawnAs(ctx, slot, false, nil)
}

// spawnAs starts a worker for slot and waits for it to be ready. A standby
// worker serves requests but does not yet supersede the slot's current
// worker: Reload activates its new workers only once all are ready. With
// Preload, zygote forks it (nil: the current zygote).
func (p *Pool) spawnAs(ctx context.Context, slot int, standby bool, zygote *worker) (*worker, error) {
	w, err := startWorker(p, slot, zygote)
	if err != nil {
		return nil, err
	}
	select {
	case <-w.ready:
	case <-w.exited:
		return nil, &StartError{App: p.cfg.App, Status: w.exitStatus, Output: w.startOutput()}
	case <-ctx.Done():
		w.kill()
		<-w.exited
		return nil, fmt.Errorf("worker %d did not import %q within %s: %w", w.pid, p.cfg.App, p.cfg.StartTimeout, ctx.Err())
	}
	p.mu.Lock()
	select {
	case <-w.exited:
		p.mu.Unlock()
		return nil, fmt.Errorf("worker %d %s right after it started", w.pid, w.exitStatus)
	default:
	}
	if p.stopping {
		p.mu.Unlock()
		w.shutdown()
		return nil, ErrStopped
	}
	w.state = stateReady
	w.wasReady = true
	w.standby = standby
	p.workers = append(p.workers, w)
	p.setDownLocked(false)
	p.cfg.ErrorLog.Printf("booting worker with pid %d (slot %d)", w.pid, slot+1)
	if !standby {
		p.activateLocked(w, "")
	}
	p.handOffLocked()
	p.mu.Unlock()
	return w, nil
}

// activateLocked makes w the current worker of its slot: the slot's other
// ready workers are superseded and drain (reason, when set, is logged for
// each). A worker whose slot was scaled away meanwhile drains at once.
func (p *Pool) activateLocked(w *worker, reason string) {
	w.standby = false
	if w.slot >= p.target || p.stopping {
		p.drainLocked(w)
		return
	}
	p.slots[w.slot].current = w
	for _, x := range p.workers {
		if x != w && x.slot == w.slot && x.state == stateReady && !x.standby {
			if reason != "" {
				p.cfg.ErrorLog.Printf("retiring worker %d (slot %d): %s", x.pid, x.slot+1, reason)
			}
			p.drainLocked(x)
		}
	}
}

// capacity is how many requests one worker holds: Threads running plus one
// queued behind them.
func (p *Pool) capacity() int { return p.cfg.Threads + 1 }

func (p *Pool) pickLocked() *worker {
	var best *worker
	for _, w := range p.workers {
		if w.state != stateReady || w.inflight >= p.capacity() {
			continue
		}
		if best == nil || w.inflight < best.inflight {
			best = w
		}
	}
	return best
}

// handOffLocked gives free worker capacity to queued waiters.
func (p *Pool) handOffLocked() {
	for len(p.waiters) > 0 {
		w := p.pickLocked()
		if w == nil {
			return
		}
		ch := p.waiters[0]
		p.waiters = p.waiters[1:]
		w.inflight++
		ch <- w
	}
}

// Do sends one request to a worker: environ is the marshal-encoded environ
// (see internal/wire), body an optional file descriptor holding the request
// body. It waits for a free worker as long as ctx allows. The caller reads
// the response frames from the returned Call and must call Call.Close.
func (p *Pool) Do(ctx context.Context, environ []byte, body *os.File, label string) (*Call, error) {
	for attempt := 0; ; attempt++ {
		w, err := p.acquire(ctx)
		if err != nil {
			return nil, err
		}
		c, err := w.send(environ, body, label)
		if err == nil {
			return c, nil
		}
		p.release(w, false)
		// The worker died before it could read the request: another one
		// can take it.
		if attempt == 2 {
			return nil, err
		}
		if body != nil {
			if _, serr := body.Seek(0, 0); serr != nil {
				return nil, err
			}
		}
	}
}

func (p *Pool) acquire(ctx context.Context) (*worker, error) {
	p.mu.Lock()
	if p.stopping {
		p.mu.Unlock()
		return nil, ErrStopped
	}
	if w := p.pickLocked(); w != nil && len(p.waiters) == 0 {
		w.inflight++
		p.mu.Unlock()
		return w, nil
	}
	ch := make(chan *worker, 1)
	p.waiters = append(p.waiters, ch)
	p.mu.Unlock()
	select {
	case w := <-ch:
		if w == nil {
			return nil, ErrStopped // Stop closed the queue
		}
		return w, nil
	case <-ctx.Done():
		p.mu.Lock()
		for i, c := range p.waiters {
			if c == ch {
				p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
				p.mu.Unlock()
				return nil, ctx.Err()
			}
		}
		p.mu.Unlock()
		if w := <-ch; w != nil {
			p.release(w, false) // handed a worker just as ctx ended
		}
		return nil, ctx.Err()
	}
}

// release returns one unit of w's capacity; served counts a finished request.
func (p *Pool) release(w *worker, served bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	w.inflight--
	if served {
		w.served++
		if w.limit > 0 && w.served >= uint64(w.limit) {
			p.recycleLocked(w, fmt.Sprintf("served %d requests (--max-requests)", w.served))
		}
	}
	if w.state == stateDraining && w.inflight == 0 {
		if w.stuck > 0 {
			// Its other requests are done; the timed-out one never will be.
			go w.dumpStacksAndKill()
		} else {
			w.shutdown()
		}
	}
	p.handOffLocked()
}

// recycleLocked starts a recycle of w (--max-requests, --max-worker-memory,
// an embedded worker's Retire), unless w no longer serves, its slot is
// being recycled already or the pool is stopping.
func (p *Pool) recycleLocked(w *worker, reason string) {
	s := &p.slots[w.slot]
	if w.state != stateReady || s.retiring || p.stopping {
		return
	}
	s.retiring = true
	s.spawning++
	go p.recycle(w, reason)
}

// recycle replaces w: a new worker for the same slot starts first; then w
// stops taking requests, finishes those it holds and exits. It is started
// by recycleLocked.
func (p *Pool) recycle(w *worker, reason string) {
	p.cfg.ErrorLog.Printf("recycling worker %d (slot %d): %s", w.pid, w.slot+1, reason)
	_, err := p.spawn(context.Background(), w.slot) // supersedes w
	p.mu.Lock()
	defer p.mu.Unlock()
	p.slots[w.slot].retiring = false
	p.replacedLocked(w.slot, err, fmt.Sprintf("replacement for worker %d failed, keeping it", w.pid))
}

// replacedLocked ends a replacement started for slot (counted in
// slotInfo.spawning): if it failed and the slot has no worker left (the
// old one died meanwhile), the slot is restarted.
func (p *Pool) replacedLocked(slot int, err error, failMsg string) {
	s := &p.slots[slot]
	s.spawning--
	if err == nil || p.stopping {
		return
	}
	p.cfg.ErrorLog.Printf("error: %s: %v", failMsg, err)
	if s.current == nil && s.spawning == 0 && slot < p.target {
		go p.restart(slot, 100*time.Millisecond)
	}
}

// drainLocked takes w out of rotation; it exits once idle.
func (p *Pool) drainLocked(w *worker) {
	if w.state != stateReady {
		return
	}
	w.state = stateDraining
	if s := &p.slots[w.slot]; s.current == w {
		s.current = nil
	}
	if w.inflight == 0 {
		w.shutdown()
	}
}

// exited is called once a worker process has ended.
func (p *Pool) exited(w *worker) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.workers {
		if x == w {
			p.workers = append(p.workers[:i], p.workers[i+1:]...)
			break
		}
	}
	if !w.wasReady {
		return // whoever spawned it reports the failure
	}
	if w.killReason != "" || !(w.state == stateDraining || p.stopping) {
		held := w.heldLabels()
		level := "warning: "
		if len(held) > 0 || w.crashSignal.Load() != 0 {
			level = "error: " // requests failed with it (an embedded worker's crash cut its connections)
		}
		msg := fmt.Sprintf("%sworker %d (slot %d) %s", level, w.pid, w.slot+1, w.exitStatus)
		if w.killReason != "" {
			msg += " after " + w.killReason
		}
		if len(held) > 0 {
			msg += "; it held: " + strings.Join(held, ", ")
		}
		p.cfg.ErrorLog.Print(msg)
	}
	s := &p.slots[w.slot]
	if s.current != w {
		return // superseded, drained or on standby: nothing to replace
	}
	s.current = nil
	if p.stopping || w.slot >= p.target || s.spawning > 0 {
		return // or a replacement is already on its way
	}
	// An unexpected death: replace it at once, unless it keeps dying right
	// after it starts (a crash loop), which backs off up to 10 s.
	s.restarts++
	switch {
	case time.Since(w.startedAt) >= time.Second:
		s.backoff = 0
	case s.backoff == 0:
		s.backoff = 100 * time.Millisecond
	default:
		s.backoff = min(2*s.backoff, 10*time.Second)
	}
	go p.restart(w.slot, s.backoff)
}

// restart starts a new worker for slot after delay, retrying with a growing
// delay while it fails (an app broken on disk is retried, not spun on).
func (p *Pool) restart(slot int, delay time.Duration) {
	for {
		time.Sleep(delay)
		p.mu.Lock()
		s := &p.slots[slot]
		if p.stopping || slot >= p.target || s.current != nil || s.spawning > 0 {
			p.mu.Unlock()
			return // nothing to do, or someone else is doing it
		}
		s.spawning++
		p.mu.Unlock()
		_, err := p.spawn(context.Background(), slot)
		p.mu.Lock()
		s.spawning--
		p.mu.Unlock()
		if err == nil || errors.Is(err, ErrStopped) {
			return
		}
		delay = min(max(2*delay, 100*time.Millisecond), 10*time.Second)
		p.cfg.ErrorLog.Printf("error: cannot restart worker slot %d, retrying in %s: %v", slot+1, delay, err)
		p.mu.Lock()
		p.setDownLocked(true)
		p.slots[slot].restarts++
		p.mu.Unlock()
	}
}

// Stop stops the pool: workers finish the requests they hold and exit;
// those still running when ctx ends are killed. Requests waiting for a
// worker fail with ErrStopped.
func (p *Pool) Stop(ctx context.Context) error {
	p.mu.Lock()
	if !p.stopping {
		close(p.done)
	}
	p.stopping = true
	p.setDownLocked(false)
	for _, ch := range p.waiters {
		close(ch)
	}
	p.waiters = nil
	for _, w := range p.workers {
		if w.state == stateReady {
			w.state = stateDraining
		}
		if w.inflight == 0 {
			w.shutdown()
		}
	}
	p.mu.Unlock()
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		p.mu.Lock()
		for _, w := range p.workers {
			w.kill()
		}
		for _, w := range p.forked {
			w.kill()
		}
		p.mu.Unlock()
		<-done
		err = ctx.Err()
	}
	// The zygote goes last: it reports its workers' exits.
	p.mu.Lock()
	z := p.zygote
	p.mu.Unlock()
	if z != nil {
		z.shutdown()
		select {
		case <-z.exited:
		case <-time.After(5 * time.Second):
			z.kill()
		}
	}
	p.zwg.Wait()
	p.mu.Lock()
	c := p.downC
	p.downC = nil
	closeFiles := !p.filesClosed
	p.filesClosed = true
	p.mu.Unlock()
	if c != nil {
		close(c)
		<-p.downD // Embedded.Unavailable(false) has returned
	}
	if e := p.cfg.Embedded; e != nil && closeFiles {
		for _, f := range e.Listeners { // the pool's copies (New)
			f.Close()
		}
	}
	return err
}

// zygoteProcess returns the running zygote, starting one if there is none.
func (p *Pool) zygoteProcess() (*worker, error) {
	p.zmu.Lock()
	defer p.zmu.Unlock()
	p.mu.Lock()
	z, stopping := p.zygote, p.stopping
	p.mu.Unlock()
	if stopping {
		return nil, ErrStopped
	}
	if z != nil {
		select {
		case <-z.exited:
		default:
			return z, nil
		}
	}
	z, err := startZygote(p)
	if err != nil {
		return nil, err
	}
	select {
	case <-z.ready:
	case <-z.exited:
		return nil, &StartError{App: p.cfg.App, Status: "(zygote) " + z.exitStatus, Output: z.startOutput()}
	case <-time.After(p.cfg.StartTimeout):
		z.kill()
		return nil, fmt.Errorf("the zygote did not import %q within %s", p.cfg.App, p.cfg.StartTimeout)
	}
	p.mu.Lock()
	p.zygote = z
	p.mu.Unlock()
	return z, nil
}

// startZygote starts a zygote process (counted in zwg).
func startZygote(p *Pool) (*worker, error) {
	if err := p.track(&p.zwg); err != nil {
		return nil, err
	}
	code := zygoteBootstrap
	if p.cfg.Preload {
		code = zygotePreBootstrap
	}
	if p.cfg.Embedded != nil {
		code = fmt.Sprintf(zygoteHostedBootstrap, p.cfg.Embedded.Library)
	}
	z, err := startProcess(p, -1, code)
	if err != nil {
		p.zwg.Done()
	}
	return z, err
}

func (p *Pool) zygoteExited(z *worker) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.zygote == z {
		p.zygote = nil
		if !p.stopping {
			p.cfg.ErrorLog.Printf("warning: the zygote %d %s; a new one is started for the next worker", z.pid, z.exitStatus)
		}
	}
}

// childExited takes a ChildExit report from the zygote.
func (p *Pool) childExited(pid int, ws syscall.WaitStatus) {
	p.mu.Lock()
	w := p.forked[pid]
	p.mu.Unlock()
	if w != nil {
		go w.finish(describeExit(ws))
	}
}

// Timeout is the way out of a request that overran its timeout (the caller
// answers 504 and closes c). A worker thread cannot be stopped alone, so
// the worker holding c stops taking requests and a replacement starts at
// once; the worker finishes the other requests it holds (up to
// Config.GracefulTimeout), then prints the Python stack of every thread to
// the error log and is killed. When every thread it has is stuck, nothing
// else can finish there and it is killed at once. reason is logged.
func (p *Pool) Timeout(c *Call, reason string) {
	w := c.w
	p.mu.Lock()
	w.stuck++
	if w.killReason == "" {
		w.killReason = reason
	}
	replace := w.state == stateReady && !p.stopping
	if replace {
		p.drainLocked(w)
		p.slots[w.slot].spawning++
	}
	others := w.inflight - 1 // c is released by the caller after this
	killNow := others <= 0 || w.stuck >= p.cfg.Threads
	p.mu.Unlock()
	if replace {
		go func() {
			_, err := p.spawn(context.Background(), w.slot)
			p.mu.Lock()
			defer p.mu.Unlock()
			p.replacedLocked(w.slot, err, fmt.Sprintf("replacement for worker %d failed", w.pid))
		}()
	}
	if killNow {
		p.cfg.ErrorLog.Printf("warning: worker %d: %s; dumping its Python threads, then killing it", w.pid, reason)
		w.dumpStacksAndKill()
		return
	}
	p.cfg.ErrorLog.Printf("warning: worker %d: %s; it takes no more requests, finishes its %d other(s) (up to %s), then its Python threads are dumped and it is killed", w.pid, reason, others, p.cfg.GracefulTimeout)
	go func() {
		select {
		case <-w.exited:
		case <-time.After(p.cfg.GracefulTimeout):
			w.dumpStacksAndKill()
		}
	}()
}

// Kill kills the worker holding c at once (after asking it to print the
// Python stack of every thread to the error log): for a worker that cannot
// be let go on (it sends what nobody takes). c fails; other requests on
// that worker get ErrWorkerDied. reason is logged.
func (p *Pool) Kill(c *Call, reason string) {
	w := c.w
	p.mu.Lock()
	if w.state == stateReady || w.state == stateDraining {
		w.state = stateDead
	}
	if w.killReason == "" {
		w.killReason = reason
	}
	p.mu.Unlock()
	p.cfg.ErrorLog.Printf("warning: worker %d: %s; dumping its Python threads, then killing it", w.pid, reason)
	w.dumpStacksAndKill()
}

// Workers returns the number of live worker processes.
func (p *Pool) Workers() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.workers)
}

// jitteredLimit returns a worker's request limit.
func (p *Pool) jitteredLimit() int {
	if p.cfg.MaxRequests <= 0 {
		return 0
	}
	j := 0
	if p.cfg.MaxRequestsJitter > 0 {
		j = rand.IntN(p.cfg.MaxRequestsJitter + 1)
	}
	return p.cfg.MaxRequests + j
}

// tail keeps the last n bytes written to it.
type tail struct {
	mu  sync.Mutex
	buf bytes.Buffer
	n   int
}

func (t *tail) Write(b []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(b)
	if over := t.buf.Len() - t.n; over > 0 {
		t.buf.Next(over)
	}
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}
