// Package worker is hornbeam's embedded worker process: the hornbeam
// binary started by the master (package pool) with CPython loaded in
// process. It serves HTTP itself on the listeners it inherits and calls the
// WSGI app straight from the request goroutine (package wsgiembed); the
// master keeps supervision, the shared state and the stats.
//
// The request path in the embedded mode is: the master opens the listeners
// and starts the workers (pool), a worker accepts a connection and serves it
// (Run, with the handler chain of package front), and the app is called in
// process (wsgiembed.Handler).
//
// A worker inherits (see internal/wire, "Embedded workers"):
//
//	fd 3     the control socket to the master (Ready, Load, Retire, Shutdown)
//	fd 4     the state socket (hornbeam.state_* calls from Python)
//	fd 5     the state change table, or /dev/null
//	fd 6     a pipe for the access log lines, or /dev/null
//	fd 7...  the listeners, Config.Listeners of them
//
// and its Config as JSON in the environment variable HORNBEAM_WORKER.
package worker

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"math"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hornbeam-go/hornbeam/asgi"
	"github.com/hornbeam-go/hornbeam/httpguard"
	"github.com/hornbeam-go/hornbeam/internal/wire"
	"github.com/hornbeam-go/hornbeam/pymarshal"
	"github.com/hornbeam-go/hornbeam/wsgiembed"
)

// EnvConfig names the environment variable that carries a worker's Config
// and marks a hornbeam process as a worker.
const EnvConfig = "HORNBEAM_WORKER"

// The descriptors a worker inherits.
const (
	fdControl  = 3
	fdState    = 4
	fdVersions = 5
	// FDAccessLog is where the worker's front writes the access log lines.
	FDAccessLog = 6
	fdListeners = 7
)

// Config is what the master tells a worker. Durations are nanoseconds.
type Config struct {
	Python     string   `json:"python"`
	App        string   `json:"app"`
	PythonPath []string `json:"pythonpath"`
	Threads    int      `json:"threads"`
	// Listeners is how many listeners follow fd 7 (Front says whether
	// they serve TLS).
	Listeners int `json:"listeners"`
	// MaxRequests: ask to be replaced after this many requests (0: never);
	// the master has added the jitter.
	MaxRequests     int           `json:"max_requests"`
	Timeout         time.Duration `json:"timeout"`
	MaxBodySize     int64         `json:"max_body_size"` // 0: no limit
	SpoolThreshold  int64         `json:"spool_threshold"`
	BodyTimeout     time.Duration `json:"body_timeout"` // 0: no limit
	CPU             int           `json:"cpu"`          // pin every thread to this CPU; -1: no
	GracefulTimeout time.Duration `json:"graceful_timeout"`
	StateVersions   bool          `json:"state_versions"`
	// Front configures the HTTP serving, as in the master's process mode.
	Front json.RawMessage `json:"front"`
	// Interface is "wsgi", "asgi" or "" (auto-detect); the others
	// configure an ASGI app (package asgi).
	Interface      string        `json:"interface"`
	Lifespan       string        `json:"lifespan"`
	WSPingInterval time.Duration `json:"ws_ping_interval"`
	WSPingTimeout  time.Duration `json:"ws_ping_timeout"`
	WSMaxMessage   int64         `json:"ws_max_message"`
	WSDeflate      bool          `json:"ws_deflate"`
	// Mounts are the apps of --mount, each under its path prefix ("" for
	// the root); when there are none, App is served at the root.
	Mounts []Mount `json:"mounts"`
	// Build is the server's BuildID: a worker library built from another
	// revision refuses to start.
	Build string `json:"build"`
	// Balance is the path of the master's balance table and Slot this
	// worker's entry in it (see balance.go); "": none.
	Balance string `json:"balance"`
	Slot    int    `json:"slot"`
}

// Mount is one --mount: an app (WSGI or ASGI, recognised) under a prefix.
type Mount struct {
	Prefix string `json:"prefix"`
	App    string `json:"app"`
}

// Frontend builds the HTTP serving around the app's handler from
// Config.Front: the server, and what wraps each inherited listener (PROXY
// protocol, TLS, the framing guard). Package hornbeam provides it, with the
// process mode's handler chain.
type Frontend func(raw json.RawMessage, app http.Handler, errorLog *log.Logger) (*http.Server, func(net.Listener) net.Listener, error)

// Main runs a worker process and returns its exit status.
func Main(frontend Frontend) int {
	errorLog := log.New(os.Stderr, "", 0)
	var cfg Config
	if err := json.Unmarshal([]byte(os.Getenv(EnvConfig)), &cfg); err != nil {
		errorLog.Printf("error: hornbeam worker: bad %s: %v", EnvConfig, err)
		return 2
	}
	os.Unsetenv(EnvConfig) // not for the app's subprocesses
	if err := checkBuild(cfg.Build); err != nil {
		errorLog.Printf("error: hornbeam worker: %v", err)
		return ExitImportFailed
	}
	if cfg.CPU >= 0 {
		if err := pin(cfg.CPU); err != nil {
			errorLog.Printf("warning: hornbeam worker: %v", err)
		}
	}
	ctl := os.NewFile(fdControl, "hornbeam-control")
	c, err := net.FileConn(ctl)
	ctl.Close()
	if err != nil {
		errorLog.Printf("error: hornbeam worker: control socket: %v", err)
		return 2
	}
	conn := wire.NewConn(c.(*net.UnixConn))
	versions := 0
	if cfg.StateVersions {
		versions = fdVersions
	}
	mounts, iface := cfg.Mounts, ""
	if len(mounts) == 0 {
		mounts, iface = []Mount{{App: cfg.App}}, cfg.Interface
	}
	extra := 0
	if len(mounts) > 1 {
		extra = 1 // an ASGI event loop holds one gate slot for good
	}
	// Every app is imported into one interpreter, the first one's.
	apps := make([]*wsgiembed.App, len(mounts))
	for i, m := range mounts {
		c := wsgiembed.Config{
			Python: cfg.Python, App: m.App, PythonPath: cfg.PythonPath, Threads: cfg.Threads,
			StateFD: fdState, VersionsFD: versions, Interface: iface, Prefix: m.Prefix, ExtraSlots: extra,
		}
		var err error
		if i == 0 {
			apps[i], err = wsgiembed.Load(c)
		} else {
			apps[i], err = apps[0].LoadAnother(c)
		}
		if err != nil {
			errorLog.Print(err) // the master shows it as the start-up error
			return ExitImportFailed
		}
	}
	w := &worker{cfg: cfg, conn: conn, log: errorLog, app: apps[0], apps: apps, mounts: mounts, retire: make(chan string, 1)}
	if w.conns.bal, err = openBalance(cfg.Balance, cfg.Slot); err != nil {
		errorLog.Printf("warning: hornbeam worker: %v (connections are spread by a fixed backoff instead)", err)
	}
	var async []asgi.Mount
	for i, a := range apps {
		if a.ASGI() != 0 {
			async = append(async, asgi.Mount{App: a, Prefix: mounts[i].Prefix})
		}
	}
	if len(async) > 0 {
		// The event loop starts and the lifespan startups run before the
		// worker says it is ready; a failure stops the server as an
		// import error does.
		var err error
		w.asgi, err = asgi.Start(async, asgi.Config{
			Lifespan: cfg.Lifespan, MaxBodySize: cfg.MaxBodySize, BodyTimeout: cfg.BodyTimeout, Timeout: cfg.Timeout,
			WSMaxMessage: cfg.WSMaxMessage, WSPingInterval: cfg.WSPingInterval, WSPingTimeout: cfg.WSPingTimeout, WSDeflate: cfg.WSDeflate,
			ErrorLog: errorLog, Observe: w.observe, OnSubscribers: w.subscribers,
		})
		if err != nil {
			errorLog.Print(err)
			return ExitImportFailed
		}
	}
	return w.run(frontend)
}

// handler is the app side of the worker: the app, or with --mount a
// router that gives each request to the mount with the longest prefix
// that is its path or a parent of it (404 when none is).
func (w *worker) handler() http.Handler {
	type route struct {
		prefix string
		h      http.Handler
	}
	var routes []route
	nasync := 0
	for i, a := range w.apps {
		var h http.Handler
		if a.ASGI() != 0 {
			h = w.asgi.Handler(nasync)
			nasync++
		} else {
			h = &wsgiembed.Handler{
				App: a, ErrorLog: w.log, Timeout: w.cfg.Timeout, OnTimeout: w.timedOut, Observe: w.observe,
				MaxBodySize: w.cfg.MaxBodySize, SpoolThreshold: w.cfg.SpoolThreshold, BodyTimeout: w.cfg.BodyTimeout,
			}
		}
		routes = append(routes, route{strings.TrimRight(w.mounts[i].Prefix, "/"), h})
	}
	if len(routes) == 1 && routes[0].prefix == "" {
		return routes[0].h
	}
	sort.SliceStable(routes, func(i, j int) bool { return len(routes[i].prefix) > len(routes[j].prefix) })
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		for _, rt := range routes {
			if rt.prefix == "" || p == rt.prefix || strings.HasPrefix(p, rt.prefix+"/") {
				rt.h.ServeHTTP(rw, r)
				return
			}
		}
		http.NotFound(rw, r)
	})
}

// ExitImportFailed is a worker's exit status when the app does not load
// (the process mode's Python workers exit with the same).
const ExitImportFailed = 3

type worker struct {
	cfg    Config
	conn   *wire.Conn
	log    *log.Logger
	app    *wsgiembed.App   // the first app: its interpreter is every app's
	apps   []*wsgiembed.App // one per mount
	mounts []Mount
	asgi   *asgi.Server // for an ASGI app
	// closeCode is what the open WebSockets are closed with at the end:
	// 1001 (going away) when the server stops, 1012 (service restart)
	// when this worker is replaced.
	closeCode atomic.Int32
	srv       *http.Server
	served    atomic.Int64
	active    atomic.Int64
	retire    chan string  // reasons to be replaced (--max-requests, a timeout)
	stuck     atomic.Int64 // requests past --timeout, still in Python

	retireOnce    sync.Once
	stopAccepting sync.Once

	obsMu sync.Mutex
	obs   []byte // each request since the last Load: status, microseconds (uint32 LE each)

	act   activity    // the requests running, and report's nudge
	conns connTracker // the listeners and the connections not yet sending (drain)
}

// maxObservations bounds the requests a Load frame reports one by one
// (about 2 s at 30k requests/s); beyond, they count as served only.
const maxObservations = 1 << 16

// observe is wsgiembed's Observe: the request goes to the server's
// traffic stats with the next Load frame.
func (w *worker) observe(status int, d time.Duration) {
	us := uint32(min(d.Microseconds(), math.MaxUint32))
	w.obsMu.Lock()
	if len(w.obs) < 8*maxObservations {
		w.obs = binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(w.obs, uint32(status)), us)
	}
	w.obsMu.Unlock()
}

// timedOut is wsgiembed's OnTimeout: a request is stuck in Python for
// good. The worker stops accepting connections at once and asks to be
// replaced; it exits once its other requests are done (shutdown).
func (w *worker) timedOut(r *http.Request, elapsed time.Duration) {
	w.log.Printf("error: worker %d takes no more connections, finishes its other requests (up to %s) and is replaced", os.Getpid(), w.grace())
	w.giveUp(fmt.Sprintf("request %s %s timed out after %s (--timeout %s)", r.Method, r.URL.Path, elapsed, w.cfg.Timeout))
}

// giveUp is the end of a worker stuck in Python (a request or the event
// loop past --timeout): it drains, stopping accepting at once, and asks
// to be replaced; it exits once its other requests are done (shutdown),
// without finalising Python.
func (w *worker) giveUp(reason string) {
	w.stuck.Add(1)
	w.stopAccepting.Do(func() {
		go w.drain(context.Background()) // stops accepting now; waits in its goroutine
	})
	w.askRetire(reason)
}

func (w *worker) grace() time.Duration {
	if w.cfg.GracefulTimeout > 0 {
		return w.cfg.GracefulTimeout
	}
	return 30 * time.Second
}

func (w *worker) run(frontend Frontend) int {
	srv, wrap, err := frontend(w.cfg.Front, w.count(w.handler()), w.log)
	if err != nil {
		w.log.Printf("error: hornbeam worker: %v", err)
		return 2
	}
	w.srv = srv
	lns, err := w.listeners()
	if err != nil {
		w.log.Printf("error: hornbeam worker: %v", err)
		return 2
	}
	served := make(chan error, len(lns))
	for _, ln := range lns {
		go func(ln net.Listener) { served <- srv.Serve(ln) }(wrap(ln))
	}
	ready, _ := pymarshal.Marshal(map[string]any{"pid": int64(os.Getpid())})
	if err := w.conn.WriteFrame(wire.Ready, 0, ready); err != nil {
		return 1
	}
	stop := make(chan struct{})
	go w.control(stop)
	go w.report(stop)
	if w.asgi != nil && w.cfg.Timeout > 0 {
		go w.heartbeat(stop)
	}
	for {
		select {
		case <-stop:
			return w.shutdown()
		case reason := <-w.retire:
			p, _ := pymarshal.Marshal(reason)
			w.conn.WriteFrame(wire.Retire, 0, p)
		case err := <-served:
			if !errors.Is(err, http.ErrServerClosed) {
				w.log.Printf("error: hornbeam worker: serving: %v", err)
				return 1
			}
		}
	}
}

// listeners wraps the inherited listening sockets, so that drain can stop
// accepting before the server shuts down, and installs on w.srv (before it
// serves) the hook that tracks the connections not yet sending.
func (w *worker) listeners() ([]net.Listener, error) {
	w.conns.track(w.srv)
	var out []net.Listener
	for i := 0; i < w.cfg.Listeners; i++ {
		f := os.NewFile(uintptr(fdListeners+i), "hornbeam-listener-"+strconv.Itoa(i))
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("inherited listener %d: %w", i, err)
		}
		sl := &stoppableListener{Listener: ln, open: &w.conns.open, bal: w.conns.bal, parked: make(chan struct{}), closed: make(chan struct{})}
		w.conns.lns = append(w.conns.lns, sl)
		out = append(out, sl)
	}
	return out, nil
}

// drain stops serving without losing a request: http.Server.Shutdown
// drops, unanswered, a request it reads after it began (a connection the
// worker had just accepted, whose client cannot know to retry). So the
// worker first stops accepting (the listening sockets stay open in the
// other workers, which take the new connections), turns keep-alive off
// (every response from now on says Connection: close; idle connections
// close, and a client retries a request sent on one as it closed, as with
// any server), waits for the connections accepted but not yet sending to
// send (up to a second), and only then shuts the server down, which waits
// for the requests running.
func (w *worker) drain(ctx context.Context) error {
	w.conns.stopAccepting()
	w.srv.SetKeepAlivesEnabled(false)
	w.conns.waitFresh(time.Second)
	return w.srv.Shutdown(ctx)
}

// connTracker knows the listeners and the connections accepted that have
// not sent their first request yet.
type connTracker struct {
	lns     []*stoppableListener
	stop    sync.Once
	stopped atomic.Bool
	bal     *balance // nil: none
	mu      sync.Mutex
	fresh   map[net.Conn]struct{}
	n       atomic.Int64 // len(fresh), read without the lock on every request
	open    atomic.Int64 // connections held (accepted, not yet closed)
}

// track chains a ConnState hook on srv (before it serves).
func (t *connTracker) track(srv *http.Server) {
	t.fresh = map[net.Conn]struct{}{}
	t.bal.set(0)
	prev := srv.ConnState
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			t.publish(t.open.Add(1))
		case http.StateClosed, http.StateHijacked:
			t.publish(t.open.Add(-1))
		}
		if s == http.StateNew {
			t.mu.Lock()
			t.fresh[c] = struct{}{}
			t.n.Store(int64(len(t.fresh)))
			t.mu.Unlock()
		} else if t.n.Load() > 0 {
			t.mu.Lock()
			delete(t.fresh, c)
			t.n.Store(int64(len(t.fresh)))
			t.mu.Unlock()
		}
		if prev != nil {
			prev(c, s)
		}
	}
}

// publish puts the number of connections held in the balance table while
// the worker accepts.
func (t *connTracker) publish(n int64) {
	if !t.stopped.Load() {
		t.bal.set(n)
	}
}

// stopAccepting stops every listener and waits (up to a second) until
// each Serve loop is parked in Accept: every connection accepted before
// has been handed to the server (and counted fresh).
func (t *connTracker) stopAccepting() {
	t.stop.Do(func() {
		t.stopped.Store(true)
		t.bal.clear()
		for _, l := range t.lns {
			l.stopped.Store(true)
			l.Listener.Close()
		}
	})
	deadline := time.After(time.Second)
	for _, l := range t.lns {
		select {
		case <-l.parked:
		case <-deadline:
			return
		}
	}
}

// waitFresh waits until no accepted connection is still to send its first
// request, up to d.
func (t *connTracker) waitFresh(d time.Duration) {
	for end := time.Now().Add(d); t.n.Load() > 0 && time.Now().Before(end); {
		time.Sleep(2 * time.Millisecond)
	}
}

// Without a balance table, a worker that holds n connections waits
// n*acceptBackoff (at most acceptBackoffMax times) before it accepts
// another, so that a burst of new connections spreads over the workers.
const (
	acceptBackoff    = 25 * time.Microsecond
	acceptBackoffMax = 4
)

// stoppableListener is an inherited listener that drain can stop without
// ending its Serve loop: once stopped, Accept waits for the server's
// Shutdown to close it, so that Serve returns http.ErrServerClosed.
type stoppableListener struct {
	net.Listener
	open      *atomic.Int64 // connections the worker holds (connTracker)
	bal       *balance      // nil: none
	stopped   atomic.Bool
	parked    chan struct{} // closed when Accept waits, stopped
	closed    chan struct{} // closed by Close
	parkOnce  sync.Once
	closeOnce sync.Once
}

func (l *stoppableListener) Accept() (net.Conn, error) {
	if l.bal != nil {
		// Let a worker that holds fewer connections take the next one.
		l.bal.wait(l.open.Load)
	} else if n := l.open.Load(); n > 0 {
		// Let the other workers take the connections waiting: every
		// worker is woken for each, and one already awake (busy) would
		// otherwise take them all, then keep them (keep-alive).
		time.Sleep(time.Duration(min(n, acceptBackoffMax)) * acceptBackoff)
	}
	c, err := l.Listener.Accept()
	if err != nil && l.stopped.Load() {
		l.parkOnce.Do(func() { close(l.parked) })
		<-l.closed
		return nil, net.ErrClosed
	}
	return c, err
}

func (l *stoppableListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	if l.stopped.Load() {
		return nil
	}
	return l.Listener.Close()
}

// control reads the master's frames: Shutdown (or the socket closing, the
// master gone) closes stop.
func (w *worker) control(stop chan<- struct{}) {
	defer close(stop)
	for {
		f, err := w.conn.ReadFrame()
		if err != nil {
			return
		}
		switch f.Type {
		case wire.Shutdown:
			if string(f.Payload) == "restart" {
				w.closeCode.Store(1012) // a reload or recycle: WebSockets may reconnect at once
			}
			return
		case wire.Publish:
			w.publish(f.Payload)
		}
		f.Discard()
	}
}

// activity is what report needs beyond the counters: the requests
// running now (the oldest is shown in /stats) and a nudge when one starts
// or ends. Its zero value is ready once init has run (count calls it).
type activity struct {
	once    sync.Once
	kick    chan struct{} // capacity 1: nudges coalesce
	mu      sync.Mutex
	running map[*runningRequest]struct{}
}

type runningRequest struct {
	method, path string
	start        time.Time
}

func (a *activity) init() {
	a.once.Do(func() {
		a.kick = make(chan struct{}, 1)
		a.running = map[*runningRequest]struct{}{}
	})
}

func (a *activity) nudge() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

func (a *activity) begin(r *http.Request) *runningRequest {
	rr := &runningRequest{method: r.Method, path: r.URL.Path, start: time.Now()}
	a.mu.Lock()
	a.running[rr] = struct{}{}
	a.mu.Unlock()
	return rr
}

func (a *activity) end(rr *runningRequest) {
	a.mu.Lock()
	delete(a.running, rr)
	a.mu.Unlock()
}

// oldest returns the longest-running request (nil: none).
func (a *activity) oldest() *runningRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	var o *runningRequest
	for rr := range a.running {
		if o == nil || rr.start.Before(o.start) {
			o = rr
		}
	}
	return o
}

// Load frames follow the requests: a request that starts or ends is
// reported at once (the master's /stats and /metrics see a finished request
// before its client can ask them), at most loadBurst frames in a row, then
// one per loadGap (under load a frame carries many requests); the ticker
// catches the rest.
const (
	loadGap   = 10 * time.Millisecond
	loadBurst = 16
)

// report sends a Load frame when something changed: the counts, the
// requests observed since the last frame and the oldest running request
// (its method and path, and how long it has run in microseconds, or None).
func (w *worker) report(stop <-chan struct{}) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	var (
		last     [2]int64
		lastOld  *runningRequest
		tat      time.Time // rate limit (GCRA): the theoretical arrival time of the next frame
		throttle = time.NewTimer(time.Hour)
	)
	throttle.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		case <-w.act.kick:
			now := time.Now()
			if tat.Before(now) {
				tat = now
			}
			if wait := tat.Sub(now) - loadBurst*loadGap; wait > 0 {
				throttle.Reset(wait)
				select {
				case <-stop:
					return
				case <-throttle.C:
				}
			}
			tat = tat.Add(loadGap)
		}
		now := [2]int64{w.served.Load(), w.active.Load()}
		old := w.act.oldest()
		w.obsMu.Lock()
		obs := w.obs
		w.obs = nil
		w.obsMu.Unlock()
		if now == last && len(obs) == 0 && old == lastOld {
			continue
		}
		last, lastOld = now, old
		if obs == nil {
			obs = []byte{}
		}
		var current any // None: no request running
		if old != nil {
			current = pymarshal.Tuple{old.method + " " + old.path, time.Since(old.start).Microseconds()}
		}
		p, _ := pymarshal.Marshal(pymarshal.Tuple{now[0], now[1], obs, current})
		if w.conn.WriteFrame(wire.Load, 0, p) != nil {
			return
		}
	}
}

// count counts requests, and asks to be replaced at --max-requests. A
// WSGI app sees a request context that a half-closed client does not end
// (httpguard.Detach), as in the process mode.
func (w *worker) count(next http.Handler) http.Handler {
	w.act.init()
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if w.asgi == nil {
			// ASGI apps see a client's EOF as the disconnect it usually
			// is (as uvicorn does): they keep r.Context().
			ctx, cancel := httpguard.Detach(r)
			defer cancel()
			r = r.WithContext(ctx)
		}
		rr := w.act.begin(r)
		w.active.Add(1)
		w.act.nudge()
		defer func() {
			w.act.end(rr)
			w.active.Add(-1)
			n := w.served.Add(1)
			w.act.nudge() // after the counts and wsgiembed's Observe
			if w.cfg.MaxRequests > 0 && n == int64(w.cfg.MaxRequests) {
				w.askRetire(fmt.Sprintf("served %d requests (--max-requests)", n))
			}
		}()
		next.ServeHTTP(rw, r)
	})
}

// heartbeat checks that the ASGI event loop answers within --timeout: a
// task that blocks it (a sync call in async code) stalls every request of
// the worker, and cancelling cannot reach it. Then the Python stacks are
// logged (the loop's shows the call that blocks it) and the worker stops
// taking connections and asks to be replaced.
func (w *worker) heartbeat(stop <-chan struct{}) {
	every := min(max(w.cfg.Timeout/4, 100*time.Millisecond), time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if w.asgi.Alive(w.cfg.Timeout) {
			continue
		}
		select {
		case <-stop:
			return
		default:
		}
		w.log.Printf("error: worker %d: its ASGI event loop has not answered for %s (--timeout): a task blocks it (a synchronous call in async code? use run_in_executor); it takes no more connections and is replaced. The Python threads (the loop runs in MainThread):\n%s\nThe event loop's %s",
			os.Getpid(), w.cfg.Timeout, w.app.Stacks(2*time.Second), w.asgi.TaskStacks(2*time.Second))
		w.giveUp(fmt.Sprintf("its ASGI event loop was blocked for %s (--timeout %s)", w.cfg.Timeout, w.cfg.Timeout))
		return
	}
}

// subscribers is asgi's OnSubscribers: the master sends this worker the
// messages published to a topic it has subscribers to.
func (w *worker) subscribers(topic string, n int) {
	p, _ := pymarshal.Marshal(pymarshal.Tuple{topic, int64(n)})
	w.conn.WriteFrame(wire.Subscribers, 0, p)
}

// publish delivers a Publish frame: (topic, text, data).
func (w *worker) publish(payload []byte) {
	v, _ := pymarshal.Unmarshal(payload)
	t, ok := v.(pymarshal.Tuple)
	if !ok || len(t) != 3 || w.asgi == nil {
		return
	}
	topic, _ := t[0].(string)
	text, _ := t[1].(bool)
	data, _ := t[2].([]byte)
	w.asgi.Deliver(topic, text, data)
}

func (w *worker) askRetire(reason string) {
	w.retireOnce.Do(func() { w.retire <- reason })
}

// shutdown stops accepting, lets the requests held finish (up to the
// graceful timeout), then finalises the interpreter. When a request is
// still in Python then, or one overran --timeout (it holds its thread for
// good), the stacks of the Python threads are dumped and the process exits
// without finalising (finalising would wait for that thread).
func (w *worker) shutdown() int {
	ctx, cancel := context.WithTimeout(context.Background(), w.grace())
	defer cancel()
	err := w.drain(ctx)
	if w.asgi != nil {
		// HTTP is done: WebSockets get 1001, then the lifespan shutdown.
		code := int(w.closeCode.Load())
		if code == 0 {
			code = 1001
		}
		if aerr := w.asgi.Shutdown(ctx, code); aerr != nil {
			w.log.Printf("error: %v", aerr)
		}
		for i := 0; i < 100 && w.active.Load() > 0; i++ {
			time.Sleep(time.Millisecond) // a closed WebSocket's handler is returning
		}
	}
	if err != nil || w.active.Load() > 0 {
		w.srv.Close()
		w.log.Printf("error: %d request(s) still running after %s (--graceful-timeout); the Python threads of worker %d, which exits now:", w.active.Load(), w.grace(), os.Getpid())
		w.app.DumpStacks(os.Stderr)
		return 1
	}
	if w.stuck.Load() > 0 {
		return 1 // a timed-out request holds a Python thread (its stack was logged)
	}
	if err := w.app.Close(); err != nil {
		w.log.Printf("warning: finalising Python: %v", err)
	}
	return 0
}
