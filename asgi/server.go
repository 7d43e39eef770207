// Package asgi serves ASGI 3 applications (and ASGI 2 double callables)
// from CPython loaded into this process: the embedded worker mode's ASGI
// side.
//
// Go owns the sockets, HTTP and the WebSocket protocol; Python runs one
// asyncio event loop, on its main thread, that runs the app's tasks. Only
// ASGI messages cross, as tuples (protocol.go, and python/hornbeam/_asgi.py
// for the Python half):
//
//   - Go to Python: a request goroutine appends an event to a queue and
//     writes to an eventfd the loop watches; the loop takes the whole batch
//     with one call (pull). No goroutine waits for the GIL.
//   - Python to Go: the app's send() calls emit on the loop's thread, which
//     hands the message to the request's goroutine and returns at once.
//
// Backpressure both ways: emit tells send() to wait (a CREDIT event ends
// the wait) once a stream has more than window bytes or messages not yet
// written to the client; Go reads the next request body chunk or
// WebSocket message only after the app has taken the previous ones.
package asgi

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hornbeam-go/hornbeam/internal/cpython"
	"github.com/hornbeam-go/hornbeam/pymarshal"
	"github.com/hornbeam-go/hornbeam/wsgiembed"
)

// Config is how a Server serves.
type Config struct {
	// Lifespan is "auto" (default: run the lifespan protocol, and serve
	// anyway when the app does not support it), "on" (a failure stops the
	// server) or "off".
	Lifespan string
	// LifespanTimeout bounds startup and shutdown (default 60 s).
	LifespanTimeout time.Duration
	// MaxBodySize is the largest request body accepted (413); 0: no limit.
	MaxBodySize int64
	// BodyTimeout gives up a request whose body stops arriving for this
	// long; 0: no limit.
	BodyTimeout time.Duration
	// Timeout cancels a request's task, and the client gets 504, when its
	// response has not started this long after it arrived; 0: no limit.
	// Once the response has started it runs as long as the app streams
	// (server-sent events); WebSockets are not limited either.
	Timeout time.Duration
	// WSMaxMessage is the largest WebSocket message taken (1009 beyond),
	// counted inflated when compressed; default 16 MiB.
	WSMaxMessage int64
	// WSDeflate offers permessage-deflate, without context takeover (a
	// few KB per socket instead of about 1.2 MB).
	WSDeflate bool
	// WSPingInterval is how often an idle WebSocket is pinged (default
	// 20 s; negative: never), and WSPingTimeout how long the pong may take
	// before the connection is closed (default 20 s).
	WSPingInterval, WSPingTimeout time.Duration
	ErrorLog                      *log.Logger
	// Observe, when set, is called once per HTTP request with the status
	// sent (0 when the connection was cut) and the time taken.
	Observe func(status int, d time.Duration)
	// OnSubscribers, when set, is told the number of this worker's
	// subscribers to a topic each time it changes (0: none left), for the
	// master to send it the topic's messages (Deliver).
	OnSubscribers func(topic string, n int)
}

// window bounds what a stream may have queued for its client, in bytes,
// before the app's send() waits; wsWindow bounds the WebSocket messages
// read from a client and not yet taken by the app.
const (
	window   = 256 << 10
	wsWindow = 32
)

// Server runs an ASGI app's event loop and serves HTTP and WebSocket
// requests with it (ServeHTTP).
type Server struct {
	cfg    Config
	py     *cpython.Interp
	runner cpython.Object
	efd    int

	qmu       sync.Mutex
	queue     *pymarshal.Encoder // the events for the next pull: a list header, then events
	spare     *pymarshal.Encoder
	nqueued   int
	signalled bool

	smu     sync.Mutex
	streams map[int64]*stream
	nextID  atomic.Int64
	sockets sync.WaitGroup // open WebSockets

	psmu   sync.Mutex
	topics map[string]*topicSubs // pub/sub subscribers (pubsub.go)

	mounts     []Mount
	lifespan   chan lifespanResult
	lifespanOK bool
	pong       chan struct{}
	loopDone   chan struct{}
	loopErr    error
	stopOnce   sync.Once
	closing    atomic.Bool
	closeCode  atomic.Int32 // the close code for open WebSockets at Shutdown
}

type lifespanResult struct {
	app                     int // the mount's index
	phase, outcome, message string
}

// LifespanError is Start's error when the app's lifespan startup failed
// (or, with Lifespan "on", is not supported): the server should stop as
// for an app that does not import.
type LifespanError struct{ Outcome, Message string }

func (e *LifespanError) Error() string {
	if e.Outcome == "failed" {
		return "ASGI lifespan startup failed: " + strings.TrimSpace(e.Message)
	}
	return "ASGI lifespan startup (--lifespan on) not supported by the app:\n" + strings.TrimSpace(e.Message)
}

// Mount is an ASGI app served under a path prefix ("" or "/": the root).
type Mount struct {
	App    *wsgiembed.App
	Prefix string
}

// Start starts the event loop of the apps (every one an ASGI app: App.ASGI()
// != 0, loaded in one interpreter) on Python's main thread and runs their
// lifespan startups. Serve app i with Handler(i); with a single app at the
// root, the Server itself is the handler.
func Start(mounts []Mount, cfg Config) (*Server, error) {
	if len(mounts) == 0 {
		return nil, errors.New("asgi: no application")
	}
	for _, m := range mounts {
		if m.App.ASGI() == 0 {
			return nil, fmt.Errorf("asgi: %s is not an ASGI application", m.Prefix)
		}
	}
	if cfg.Lifespan == "" {
		cfg.Lifespan = "auto"
	}
	if cfg.LifespanTimeout <= 0 {
		cfg.LifespanTimeout = 60 * time.Second
	}
	if cfg.WSMaxMessage <= 0 {
		cfg.WSMaxMessage = 16 << 20
	}
	if cfg.WSPingInterval == 0 {
		cfg.WSPingInterval = 20 * time.Second
	}
	if cfg.WSPingTimeout <= 0 {
		cfg.WSPingTimeout = 20 * time.Second
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("asgi: eventfd: %w", err)
	}
	s := &Server{
		cfg: cfg, py: mounts[0].App.Interp(), efd: efd, mounts: mounts,
		queue: &pymarshal.Encoder{}, spare: &pymarshal.Encoder{},
		streams:  make(map[int64]*stream),
		topics:   make(map[string]*topicSubs),
		lifespan: make(chan lifespanResult, 2*len(mounts)),
		pong:     make(chan struct{}, 1),
		loopDone: make(chan struct{}),
	}
	s.closeCode.Store(1001)
	s.queue.BeginList(0)
	var setupErr error
	s.py.OnMain(func() { setupErr = s.setup() })
	if setupErr != nil {
		unix.Close(efd)
		return nil, setupErr
	}
	go s.loop()
	if cfg.Lifespan == "off" {
		return s, nil
	}
	s.post(evLifespan, 0, "startup")
	deadline := time.After(cfg.LifespanTimeout)
	for range mounts {
		var res lifespanResult
		select {
		case res = <-s.lifespan:
		case <-s.loopDone:
			return nil, fmt.Errorf("asgi: the event loop ended during lifespan startup: %v", s.loopErr)
		case <-deadline:
			s.stop()
			return nil, fmt.Errorf("ASGI lifespan startup did not finish within %s", cfg.LifespanTimeout)
		}
		where := ""
		if len(mounts) > 1 {
			where = fmt.Sprintf(" (--mount %s=%s)", mounts[res.app].Prefix, mounts[res.app].App.Spec())
		}
		switch {
		case res.outcome == "complete":
			s.lifespanOK = true
		case res.outcome == "failed" || cfg.Lifespan == "on":
			s.stop()
			return nil, &LifespanError{Outcome: res.outcome, Message: res.message + where}
		default: // unsupported, auto: serve without it, but never silently
			msg := strings.TrimSpace(res.message)
			if strings.Contains(msg, "Traceback") {
				s.logf("warning: ASGI lifespan is not supported by the app%s (it raised); serving without it (--lifespan off hides this):\n%s", where, msg)
			} else {
				s.logf("info: ASGI lifespan%s: %s; serving without it", where, msg)
			}
		}
	}
	return s, nil
}

// setup makes the Go functions the loop calls and the Python Runner (main
// thread, GIL held).
func (s *Server) setup() error {
	py := s.py
	emit, err := py.NewFunction("hornbeam_asgi_emit", s.emit)
	if err != nil {
		return err
	}
	pull, err := py.NewFunction("hornbeam_asgi_pull", s.pull)
	if err != nil {
		return err
	}
	mod, err := py.Import("hornbeam._asgi")
	if err != nil {
		return fmt.Errorf("hornbeam's Python runtime: %v", err)
	}
	defer py.DecRef(mod)
	mk, err := py.GetAttr(mod, "runner")
	if err != nil {
		return err
	}
	defer py.DecRef(mk)
	fd, _ := py.NewInt(int64(s.efd))
	defer py.DecRef(fd)
	mode, _ := py.NewStr(s.cfg.Lifespan)
	defer py.DecRef(mode)
	args := []cpython.Object{emit, pull, fd, mode}
	for _, m := range s.mounts {
		args = append(args, m.App.ASGI()) // runner(emit, pull, wake_fd, lifespan, *apps)
	}
	s.runner, err = py.Call(mk, args...)
	return err
}

// loop runs the event loop until evStop.
func (s *Server) loop() {
	defer close(s.loopDone)
	err := s.py.OnMain(func() {
		run, err := s.py.GetAttr(s.runner, "run")
		if err == nil {
			var r cpython.Object
			r, err = s.py.Call(run)
			s.py.DecRef(r)
			s.py.DecRef(run)
		}
		s.loopErr = err
	})
	if err != nil {
		s.loopErr = err
	}
	if s.loopErr != nil && !s.closing.Load() {
		s.logf("error: the ASGI event loop ended: %v", s.loopErr)
	}
}

// post queues an event for the loop: kind, the stream id, then the values
// (each a type pymarshal encodes, or a func that writes one value).
func (s *Server) post(kind int, sid int64, vals ...any) {
	s.qmu.Lock()
	e := s.queue
	e.BeginTuple(2 + len(vals))
	e.Int(int64(kind))
	e.Int(sid)
	for _, v := range vals {
		switch v := v.(type) {
		case []byte:
			e.Bytes(v)
		case string:
			e.Str(v)
		case bool:
			e.Bool(v)
		case int:
			e.Int(int64(v))
		case nil:
			e.None()
		case func(*pymarshal.Encoder):
			v(e) // one value, written in place (a scope)
		default:
			e.Value(v)
		}
	}
	s.nqueued++
	wake := !s.signalled
	s.signalled = true
	s.qmu.Unlock()
	if wake {
		var one [8]byte
		binary.NativeEndian.PutUint64(one[:], 1)
		unix.Write(s.efd, one[:])
	}
}

// pull is hornbeam_asgi_pull(): the events queued since the last call, as
// a list (loop thread, GIL held).
func (s *Server) pull(cpython.Object) (ret cpython.Object) {
	defer s.recoverTo(&ret)
	s.qmu.Lock()
	e, n := s.queue, s.nqueued
	s.queue, s.spare = s.spare, e
	s.queue.Reset()
	s.queue.BeginList(0)
	s.nqueued = 0
	s.signalled = false
	s.qmu.Unlock()
	data := e.Data()
	binary.LittleEndian.PutUint32(data[1:5], uint32(n))
	o, err := s.py.FromMarshal(data)
	if err != nil {
		s.py.SetError(false, "hornbeam: bad event batch: "+err.Error())
		return 0
	}
	return o
}

// recoverTo turns a panic in a function Python called into a Python
// exception: a panic must never unwind through Python's C frames.
func (s *Server) recoverTo(ret *cpython.Object) {
	if e := recover(); e != nil {
		s.py.SetError(false, fmt.Sprintf("hornbeam: %v", e))
		*ret = 0
	}
}

func (s *Server) logf(format string, args ...any) {
	if s.cfg.ErrorLog != nil {
		s.cfg.ErrorLog.Printf(format, args...)
	}
}

func (s *Server) add(st *stream) {
	s.smu.Lock()
	s.streams[st.id] = st
	s.smu.Unlock()
}

func (s *Server) remove(id int64) {
	s.smu.Lock()
	delete(s.streams, id)
	s.smu.Unlock()
}

func (s *Server) get(id int64) *stream {
	s.smu.Lock()
	st := s.streams[id]
	s.smu.Unlock()
	return st
}

// TaskStacks returns the stack of every task of the event loop, for a
// loop that does not answer (Alive): the loop is stuck, so reading its
// tasks from another thread is safe enough for a report.
func (s *Server) TaskStacks(wait time.Duration) string {
	return s.mounts[0].App.Diagnose(taskStacksCode, wait)
}

const taskStacksCode = `
import asyncio, io
from hornbeam import _asgi
out = io.StringIO()
loop = _asgi.RUNNER.loop if _asgi.RUNNER else None
tasks = list(asyncio.all_tasks(loop)) if loop else []
for t in tasks:
    out.write("%r\n" % (t,))
    t.print_stack(limit=20, file=out)
result = "%d task(s):\n%s" % (len(tasks), out.getvalue())
`

// Alive asks the event loop to answer within d: false means it is stuck
// (a task blocking it), for a heartbeat.
func (s *Server) Alive(d time.Duration) bool {
	select {
	case <-s.pong:
	default:
	}
	s.post(evPing, 0)
	select {
	case <-s.pong:
		return true
	case <-s.loopDone:
		return false
	case <-time.After(d):
		return false
	}
}

// Shutdown closes the open WebSockets with code (1001 going away, 1012
// service restart), runs the lifespan shutdown and stops the event loop.
// Call it after the HTTP server's own Shutdown (the HTTP requests are
// done). ctx bounds the wait.
func (s *Server) Shutdown(ctx context.Context, code int) error {
	s.closeCode.Store(int32(code))
	s.closing.Store(true)
	s.smu.Lock()
	for _, st := range s.streams {
		st.closeWS(code, "server shutting down")
	}
	s.smu.Unlock()
	done := make(chan struct{})
	go func() { s.sockets.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	var err error
	if s.lifespanOK {
		for len(s.lifespan) > 0 {
			<-s.lifespan
		}
		s.post(evLifespan, 0, "shutdown")
	wait:
		for range s.mounts {
			select {
			case res := <-s.lifespan:
				if res.outcome == "failed" {
					err = errors.Join(err, fmt.Errorf("ASGI lifespan shutdown failed: %s", strings.TrimSpace(res.message)))
				} else if res.outcome == "unsupported" && strings.Contains(res.message, "Traceback") {
					err = errors.Join(err, fmt.Errorf("ASGI lifespan shutdown raised:\n%s", strings.TrimSpace(res.message)))
				}
			case <-ctx.Done():
				err = errors.Join(err, errors.New("ASGI lifespan shutdown did not finish in time"))
				break wait
			case <-s.loopDone:
				break wait
			}
		}
	}
	s.stop()
	select {
	case <-s.loopDone:
	case <-ctx.Done():
		if err == nil {
			err = errors.New("the ASGI event loop did not stop in time")
		}
	}
	return err
}

func (s *Server) stop() {
	s.closing.Store(true)
	s.stopOnce.Do(func() { s.post(evStop, 0) })
}
