package wsgiembed

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hornbeam-go/hornbeam/internal/cpython"
	"github.com/hornbeam-go/hornbeam/internal/httpwsgi"
	"github.com/hornbeam-go/hornbeam/pymarshal"
)

// Handler serves HTTP requests with an App, in the calling goroutine.
//
// The whole request body is read first (in memory up to SpoolThreshold,
// then into an unlinked temporary file), so a client trickling its body
// never holds Python. The app is called with the GIL held; the response is
// written with the GIL released. A response the app returns as a list
// leaves in one write with a Content-Length; a generator's chunks are sent
// as they come (each flushed within streamGrace, or with the next chunk if
// that comes sooner); a wsgi.file_wrapper file with a descriptor is sent by
// Go (sendfile on plain TCP).
type Handler struct {
	App *App
	// MaxBodySize is the largest request body accepted (413 beyond); 0 = no limit.
	MaxBodySize int64
	// SpoolThreshold is the largest body passed in memory (an io.BytesIO);
	// larger ones go through a temporary file in SpoolDir (default
	// os.TempDir()). 0: DefaultSpoolThreshold.
	SpoolThreshold int64
	SpoolDir       string
	// BodyTimeout closes a request whose body stops arriving for this long
	// (408 when the client can still read it). 0 = no limit.
	BodyTimeout time.Duration
	ErrorLog    *log.Logger
	// Observe, when set, is called once per request with the status sent
	// (0 when the connection was cut) and the time taken.
	Observe func(status int, d time.Duration)
	// Timeout bounds a request from arrival to the app's last chunk. A
	// request still inside Python then cannot be taken back from it: its
	// client gets 504 at once (or a cut connection if the response had
	// started), the Python stacks are logged, and OnTimeout is called: the
	// process should stop taking work and be replaced. 0 = no limit.
	Timeout   time.Duration
	OnTimeout func(r *http.Request, elapsed time.Duration)

	encoders sync.Pool
}

// DefaultSpoolThreshold is the SpoolThreshold used when it is 0: the
// process mode's (wsgi.DefaultSpoolThreshold), so that the app sees the
// same wsgi.input types.
const DefaultSpoolThreshold = httpwsgi.DefaultSpoolThreshold

// streamGrace is how long a streamed chunk may wait unflushed for the
// next one: a framework's one-chunk iterable (Flask, Django) then leaves
// in one write with its end.
const streamGrace = time.Millisecond

func (h *Handler) logf(format string, args ...any) {
	if h.ErrorLog != nil {
		h.ErrorLog.Printf(format, args...)
	}
}

// bodyLogf logs a failure to read a request body (httpwsgi.ReadBody); the
// embedded mode's lines have no level prefix.
func (h *Handler) bodyLogf(_, format string, args ...any) {
	h.logf(format, args...)
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	status := 0 // stays 0 when the connection is cut (abort panics)
	if h.Observe != nil {
		defer func() { h.Observe(status, time.Since(start)) }()
	}
	status = h.serve(w, r, start)
}

// request is one request's state, shared with emit (write() and early
// hints, called from Python while the app runs).
type request struct {
	h      *Handler
	a      *App
	w      http.ResponseWriter
	r      *http.Request
	begun  time.Time
	status int  // sent status, 0 before the head
	length int  // >= 0: the Content-Length to add to the head
	failed bool // answered with an error already: the rest is dropped
	broken bool // a write to the client failed

	// mu serialises the use of w between the request's goroutine and the
	// others that may write while it is inside Python: the stream's flush
	// timer, the timeout, and emit.
	mu        sync.Mutex
	started   bool          // head written
	waiting   bool          // waiting for the gate
	inPy      bool          // inside Python
	expired   bool          // past the timeout: no more Python calls
	expiredC  chan struct{} // closed at the timeout: the gate wait gives up
	timedOut  bool          // the timeout gave up on the Python call in progress
	done      bool          // the handler is returning: nobody else touches w
	deadline  *time.Timer
	flush     *time.Timer
	unflushed bool
}

func (rq *request) label() string { return rq.r.Method + " " + rq.r.URL.Path }

// serve handles one request and returns the status sent (0: cut).
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, start time.Time) int {
	rq := &request{h: h, a: h.App, w: w, r: r, begun: start, length: -1}
	if h.Timeout > 0 {
		rq.expiredC = make(chan struct{})
		rq.deadline = time.AfterFunc(h.Timeout-time.Since(start), rq.expire)
	}
	defer rq.finish()
	body, file, n, status := httpwsgi.ReadBody(w, r, httpwsgi.BodyRules{MaxSize: h.MaxBodySize,
		SpoolThreshold: h.SpoolThreshold, SpoolDir: h.SpoolDir, IdleTimeout: h.BodyTimeout, Logf: h.bodyLogf})
	if status == httpwsgi.Abandoned {
		httpwsgi.Abort()
	}
	if status != 0 {
		return status
	}
	fd := -1
	if file != nil {
		defer file.Close()
		// Python gets a descriptor of its own, closed after the request.
		var err error
		if fd, err = unix.FcntlInt(file.Fd(), unix.F_DUPFD_CLOEXEC, 0); err != nil {
			h.logf("%s %s: cannot pass the request body: %v", r.Method, r.URL.Path, err)
			httpwsgi.ErrorResponse(w, http.StatusInternalServerError, "Internal Server Error: cannot pass the request body")
			return http.StatusInternalServerError
		}
	}
	e, _ := h.encoders.Get().(*pymarshal.Encoder)
	if e == nil {
		e = new(pymarshal.Encoder)
	}
	appendEnviron(e, r, body, fd, n)
	slot, ok := rq.enter()
	if !ok {
		h.encoders.Put(e)
		if fd >= 0 {
			unix.Close(fd)
		}
		return rq.notEntered()
	}
	out := h.App.callHandle(rq, slot, e.Data(), fd)
	h.encoders.Put(e)
	if !rq.leavePy() {
		h.App.drop(out)
		return rq.afterTimeout()
	}
	if out.err != nil {
		return rq.internalError(out.err)
	}
	defer h.App.py.DecRefLater(out.obj) // after the body was written from it
	if rq.failed {
		h.App.drop(result{stream: out.stream, fd: out.fd, data: out.data})
		return http.StatusInternalServerError // write() sent a bad head: answered already
	}
	switch out.data[0] {
	case 'R':
		return rq.complete(out.data[1:], false)
	case 'L':
		return rq.complete(out.data[1:], true)
	case 'E':
		return rq.appError(out.data[1:])
	case 'S':
		return rq.stream(out)
	case 'F':
		return rq.sendFile(out)
	}
	return rq.internalError(fmt.Errorf("unexpected result %q from hornbeam._embed", out.data[:1]))
}

// enter waits for a gate slot and takes the GIL, unless the client leaves
// or the request's time is up first.
func (rq *request) enter() (int, bool) {
	rq.mu.Lock()
	if rq.expired {
		rq.mu.Unlock()
		return -1, false
	}
	rq.waiting = true
	rq.mu.Unlock()
	py := rq.a.py
	slot, ok := py.EnterOr(rq.r.Context().Done(), rq.expiredC)
	rq.mu.Lock()
	rq.waiting = false
	if ok && rq.expired { // a slot came as the time ran out
		rq.mu.Unlock()
		py.Leave(slot)
		return -1, false
	}
	rq.inPy = ok
	rq.mu.Unlock()
	return slot, ok
}

// notEntered answers a request that did not get into Python: its client
// left (cut), or the timeout passed while it waited (503, as the process
// mode answers a request no worker took in time) or between two chunks of
// its stream (cut).
func (rq *request) notEntered() int {
	if rq.r.Context().Err() != nil {
		httpwsgi.Abort()
	}
	if rq.started {
		httpwsgi.Abort()
	}
	httpwsgi.ErrorResponse(rq.w, http.StatusServiceUnavailable, "Service Unavailable: no worker was free within the timeout")
	return http.StatusServiceUnavailable
}

// leavePy marks the request out of Python; false if the timeout gave up on
// it meanwhile (and answered for it).
func (rq *request) leavePy() bool {
	rq.mu.Lock()
	rq.inPy = false
	ok := !rq.timedOut
	rq.mu.Unlock()
	return ok
}

// expire runs at the timeout. A request inside Python cannot be taken
// back from it: the client gets 504 now (or a cut, once its response has
// started), and OnTimeout tells the caller to replace this process. One
// outside Python (Go writing what the app gave) may finish, but makes no
// more Python calls.
func (rq *request) expire() {
	rq.mu.Lock()
	if rq.done {
		rq.mu.Unlock()
		return
	}
	rq.expired = true
	close(rq.expiredC)
	hung := rq.inPy
	if hung {
		rq.timedOut = true
		if !rq.started && !rq.failed {
			rq.failed = true
			rq.w.Header().Set("Connection", "close")
			httpwsgi.ErrorResponse(rq.w, http.StatusGatewayTimeout, "Gateway Timeout: the application did not answer in time")
			if f, ok := rq.w.(http.Flusher); ok {
				f.Flush()
			}
		}
	}
	rq.mu.Unlock()
	if hung {
		rq.h.hung(rq)
	}
}

// afterTimeout is the handler's answer once the timeout took over: 504
// (sent by expire, or now if it was not inside Python then), or a cut.
func (rq *request) afterTimeout() int {
	rq.mu.Lock()
	answered, started := rq.failed, rq.started
	rq.mu.Unlock()
	if started {
		httpwsgi.Abort()
	}
	if !answered {
		rq.failed = true
		rq.w.Header().Set("Connection", "close")
		httpwsgi.ErrorResponse(rq.w, http.StatusGatewayTimeout, "Gateway Timeout: the application did not answer in time")
	}
	return http.StatusGatewayTimeout
}

// finish stops the timers: after it, only the handler touches w.
func (rq *request) finish() {
	if rq.deadline == nil && rq.flush == nil {
		return
	}
	rq.mu.Lock()
	rq.done = true
	if rq.deadline != nil {
		rq.deadline.Stop()
	}
	if rq.flush != nil {
		rq.flush.Stop()
	}
	rq.mu.Unlock()
}

// hung logs a request the timeout gave up on, with the Python stacks, and
// calls OnTimeout.
func (h *Handler) hung(rq *request) {
	elapsed := time.Since(rq.begun).Round(time.Millisecond)
	h.logf("request %s (request id %s) timed out after %s (timeout %s); Python stacks:\n%s",
		rq.label(), httpwsgi.OrDash(rq.r.Header.Get("X-Request-Id")), elapsed, h.Timeout, h.App.Stacks(2*time.Second))
	if h.OnTimeout != nil {
		h.OnTimeout(rq.r, elapsed)
	}
}

// result is what handle() returned, decoded with the GIL held.
type result struct {
	obj    cpython.Object // the returned object (keeps data alive)
	data   []byte         // its bytes, or those of its first item
	stream cpython.Object // 'S': the stream to step
	// A stream's head and first chunk already written (written), refused
	// by the checks (headRefused), or written and the next step taken
	// (stepped, next).
	written, headRefused, stepped bool
	next                          step
	fd                            int // 'F': the file
	offset                        int64
	length                        int64
	err                           error // handle() itself failed (not the app: its errors are 'E')
}

// callHandle runs handle(environ) with the GIL held.
func (a *App) callHandle(rq *request, slot int, env []byte, fd int) (out result) {
	py := a.py
	a.cur[slot] = rq
	defer func() {
		a.cur[slot] = nil
		py.Leave(slot)
	}()
	envObj, err := py.FromMarshal(env)
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		out.err = err
		return
	}
	res, err := py.CallOneArg(a.handle, envObj)
	py.DecRef(envObj)
	if err != nil {
		out.err = err
		return
	}
	out.obj = res
	if b, ok := py.Bytes(res); ok && len(b) > 0 {
		out.data = b
		return
	}
	// A tuple: (b"S" + HEAD + CRLFCRLF + CHUNK, stream) or
	// (b"F" + HEAD, fd, offset, length).
	b, ok := py.Bytes(py.TupleItem(res, 0))
	if !ok || len(b) == 0 || (b[0] != 'S' && b[0] != 'F') {
		out.err = errors.New("hornbeam._embed returned an unexpected value")
		return
	}
	out.data = b
	if b[0] == 'S' {
		out.stream = py.TupleItem(res, 1)
		py.IncRef(out.stream)
		if len(b) <= firstChunkInline {
			a.firstChunk(rq, &out)
		}
		return
	}
	var v [3]int64
	for i := range v {
		if v[i], err = py.Int(py.TupleItem(res, i+1)); err != nil {
			out.err = err
			return
		}
	}
	out.fd, out.offset, out.length = int(v[0]), v[1], v[2]
	return
}

// firstChunkInline is the largest first chunk of a stream written while
// the gate slot is held (into the response's buffer or the socket's, so it
// does not wait for the client).
const firstChunkInline = 64 << 10

// firstChunk writes a stream's head and first chunk with the GIL released
// but the gate slot kept, then takes the next step at once: a framework's
// one-chunk iterable (Flask, Django) then ends in the same pass through
// the gate instead of queueing again behind every waiting request.
func (a *App) firstChunk(rq *request, out *result) {
	head, data := splitHead(out.data[1:])
	started, wrote := true, true
	a.py.Unblock(func() {
		if len(head) > 0 {
			rq.mu.Lock()
			started = rq.start(head)
			rq.mu.Unlock()
		}
		if started && len(data) > 0 {
			wrote = rq.writeChunk(data)
		}
	})
	out.written = true
	switch {
	case !started:
		out.headRefused = true
	case !wrote:
		rq.broken = true
	default:
		out.next = a.stepHeld(rq, out.stream)
		out.stepped = true
	}
}

// step is the next chunk of a stream: data (kept alive by obj), or the end
// (done), or the app's error text after the response started.
type step struct {
	obj     cpython.Object
	data    []byte
	done    bool
	errText string
	err     error
}

func (a *App) callStep(rq *request, slot int, stream cpython.Object) step {
	py := a.py
	a.cur[slot] = rq
	defer func() {
		a.cur[slot] = nil
		py.Leave(slot)
	}()
	return a.stepHeld(rq, stream)
}

// finished reports whether step() ended the stream (and closed it).
func (s step) finished() bool { return s.done || s.errText != "" }

// stepHeld calls step(stream), the GIL held.
func (a *App) stepHeld(rq *request, stream cpython.Object) (s step) {
	py := a.py
	r, err := py.CallOneArg(a.step, stream)
	if err != nil {
		s.err = err
		return
	}
	s.obj = r
	if b, ok := py.Bytes(r); ok {
		s.data = b
		return
	}
	if r == py.None() {
		s.done = true
		return
	}
	s.errText, s.err = py.GoString(r)
	if s.err == nil && s.errText == "" {
		s.errText = "the response iterable failed"
	}
	return
}

// drop releases a result nobody will send (the timeout answered for it).
func (a *App) drop(out result) {
	if out.stepped {
		a.py.DecRefLater(out.next.obj)
	}
	if out.stream != 0 {
		if !out.stepped || !out.next.finished() {
			a.callStop(out.stream)
		}
		a.py.DecRefLater(out.stream)
	}
	if len(out.data) > 0 && out.data[0] == 'F' {
		unix.Close(out.fd)
	}
	a.py.DecRefLater(out.obj)
}

// callStop closes a stream the client no longer reads.
func (a *App) callStop(stream cpython.Object) {
	py := a.py
	slot := py.Enter()
	defer py.Leave(slot)
	if r, err := py.CallOneArg(a.stop, stream); err == nil {
		py.DecRef(r)
	}
}

// internalError is a failure of the embedding itself (not one the app
// raised): logged; 500, or a cut once the response has started.
func (rq *request) internalError(err error) int {
	rq.h.logf("%s: %v", rq.label(), err)
	if rq.started || rq.failed {
		httpwsgi.Abort()
	}
	httpwsgi.ErrorResponse(rq.w, http.StatusInternalServerError, "Internal Server Error")
	return http.StatusInternalServerError
}

// appError reports the app's exception: SUMMARY NUL TRACEBACK.
func (rq *request) appError(p []byte) int {
	summary, text, _ := bytes.Cut(p, []byte{0})
	if !rq.started {
		rq.h.logf("%s: %s (500)\n%s", rq.label(), summary, bytes.TrimRight(text, "\n"))
		httpwsgi.ErrorResponse(rq.w, http.StatusInternalServerError, "Internal Server Error")
		return http.StatusInternalServerError
	}
	rq.h.logf("%s: %s after the response started; closing the connection\n%s", rq.label(), summary, bytes.TrimRight(text, "\n"))
	rq.mu.Lock()
	if f, ok := rq.w.(http.Flusher); ok && !rq.done {
		f.Flush() // what the app sent, then the cut
	}
	rq.mu.Unlock()
	httpwsgi.Abort()
	return 0
}

var crlf2 = []byte("\r\n\r\n")

// splitHead splits HEAD CRLFCRLF BODY (the head never holds CRLFCRLF: its
// lines are a status and name:value pairs without CR or LF).
func splitHead(p []byte) (head, body []byte) {
	i := bytes.Index(p, crlf2)
	if i < 0 {
		return p, nil
	}
	return p[:i], p[i+4:]
}

// complete sends a response that is all there: HEAD CRLFCRLF BODY, with a
// Content-Length added when withLength.
func (rq *request) complete(p []byte, withLength bool) int {
	head, body := splitHead(p)
	if withLength {
		rq.length = len(body)
	}
	if len(head) > 0 && !rq.start(head) {
		return rq.fail()
	}
	if !rq.started {
		return rq.internalError(errors.New("a response without a head"))
	}
	if len(body) > 0 {
		if _, err := rq.w.Write(body); err != nil {
			rq.broken = true
		}
	}
	if rq.broken {
		httpwsgi.Abort()
	}
	return rq.status
}

// stream sends the first chunk (unless firstChunk did), then each next
// one step() gives.
func (rq *request) stream(out result) int {
	a := rq.a
	defer a.py.DecRefLater(out.stream)
	var data []byte
	switch {
	case out.headRefused:
		a.callStop(out.stream)
		return rq.fail()
	case out.written && !out.stepped: // the client went away
		a.callStop(out.stream)
		httpwsgi.Abort()
	case !out.written:
		head, first := splitHead(out.data[1:])
		if len(head) > 0 && !rq.start(head) {
			a.callStop(out.stream)
			return rq.fail()
		}
		data = first
	}
	s, have := out.next, out.stepped
	var held cpython.Object // what data is read from in place: dropped once written
	for {
		if !have {
			if len(data) > 0 && !rq.writeChunk(data) {
				rq.broken = true
			}
			a.py.DecRefLater(held)
			held = 0
			if rq.broken {
				a.callStop(out.stream) // the client went away: close() now
				httpwsgi.Abort()
			}
			slot, ok := rq.enter()
			if !ok {
				a.callStop(out.stream)
				return rq.notEntered()
			}
			s = a.callStep(rq, slot, out.stream)
			if !rq.leavePy() {
				a.py.DecRefLater(s.obj)
				if s.err == nil && !s.finished() {
					a.callStop(out.stream)
				}
				return rq.afterTimeout()
			}
		}
		have = false
		switch {
		case s.err != nil:
			a.py.DecRefLater(s.obj)
			a.callStop(out.stream)
			return rq.internalError(s.err)
		case s.errText != "":
			a.py.DecRefLater(s.obj)
			return rq.appError([]byte(s.errText))
		case s.done:
			return rq.status
		}
		if rq.failed {
			a.py.DecRefLater(s.obj)
			a.callStop(out.stream)
			httpwsgi.Abort()
		}
		held, data = s.obj, s.data
	}
}

// writeChunk writes a streamed chunk and has it flushed within streamGrace
// unless the next one comes first: a framework's one-chunk iterable (Flask,
// Django) then leaves in one write with its end, and a slow generator's
// chunks reach the client as they come.
func (rq *request) writeChunk(p []byte) bool {
	rq.mu.Lock()
	defer rq.mu.Unlock()
	if rq.timedOut {
		return true
	}
	_, err := rq.w.Write(p)
	rq.unflushed = true
	if rq.flush == nil {
		rq.flush = time.AfterFunc(streamGrace, rq.flushNow)
	} else {
		rq.flush.Reset(streamGrace)
	}
	return err == nil
}

func (rq *request) flushNow() {
	rq.mu.Lock()
	if rq.unflushed && !rq.done {
		rq.unflushed = false
		if f, ok := rq.w.(http.Flusher); ok {
			f.Flush()
		}
	}
	rq.mu.Unlock()
}

// sendFile sends a wsgi.file_wrapper file from its descriptor.
func (rq *request) sendFile(out result) int {
	f := os.NewFile(uintptr(out.fd), "wsgi.file_wrapper")
	defer f.Close()
	if !rq.start(out.data[1:]) {
		return rq.fail()
	}
	if _, err := f.Seek(out.offset, io.SeekStart); err != nil {
		rq.h.logf("%s: seek in the file to send: %v", rq.label(), err)
		httpwsgi.Abort()
	}
	if _, err := io.Copy(rq.w, io.LimitReader(f, out.length)); err != nil {
		httpwsgi.Abort()
	}
	return rq.status
}

// write is write(data) from the app: HEAD CRLFCRLF DATA, HEAD empty once
// sent. Called from emit, inside Python with the GIL released: it must not
// panic.
func (rq *request) write(p []byte) {
	rq.mu.Lock()
	defer rq.mu.Unlock()
	if rq.failed || rq.broken || rq.timedOut {
		return
	}
	head, data := splitHead(p)
	if len(head) > 0 && !rq.started && !rq.start(head) {
		rq.failed = true
		httpwsgi.ErrorResponse(rq.w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	if len(data) > 0 {
		if _, err := rq.w.Write(data); err != nil {
			rq.broken = true
			return
		}
	}
	if f, ok := rq.w.(http.Flusher); ok {
		f.Flush()
	}
}

// hints sends 103 Early Hints: HEADERS is CRLF name:value, repeated.
// Called from emit, like write.
func (rq *request) hints(p []byte) {
	rq.mu.Lock()
	defer rq.mu.Unlock()
	if rq.started || rq.failed || rq.timedOut || (rq.r.ProtoMajor == 1 && rq.r.ProtoMinor == 0) {
		return // too late, or an HTTP/1.0 client, which must not get a 1xx
	}
	var hs [][2]string
	for _, line := range strings.Split(string(p), "\r\n")[1:] {
		name, value, ok := strings.Cut(line, ":")
		if !ok || !httpwsgi.ValidHeader(name, value) {
			rq.h.logf("%s: bad early hints: invalid header %q", rq.label(), line)
			return
		}
		hs = append(hs, [2]string{name, value})
	}
	httpwsgi.WriteEarlyHints(rq.w, hs)
}

// fail answers 500 for a response whose head Go refused (logged by start),
// or cuts the connection if a head was sent already.
func (rq *request) fail() int {
	if rq.started {
		httpwsgi.Abort()
	}
	rq.failed = true
	httpwsgi.ErrorResponse(rq.w, http.StatusInternalServerError, "Internal Server Error")
	return http.StatusInternalServerError
}

// start applies the app's status and headers (HEAD: status, then CRLF
// name:value per header, latin-1 bytes) and writes them, with the process
// mode's checks on top of the Python ones (wsgi/handler.go: start).
func (rq *request) start(headBytes []byte) bool {
	head := string(headBytes) // one copy: the header map outlives the Python object
	statusLine, rest, _ := strings.Cut(head, "\r\n")
	code, err := httpwsgi.ParseStatus(statusLine)
	if err != nil {
		rq.h.logf("%s: the app sent an invalid status %q: %v (500)", rq.label(), statusLine, err)
		return false
	}
	hd := rq.w.Header()
	// Check every header before setting any.
	for line := range lines(rest) {
		name, value, ok := strings.Cut(line, ":")
		if !ok || !httpwsgi.ValidHeader(name, value) {
			rq.h.logf("%s: the app sent an invalid response start: invalid header %q (500)", rq.label(), line)
			return false
		}
	}
	for line := range lines(rest) {
		name, value, _ := strings.Cut(line, ":")
		httpwsgi.AddHeader(hd, rq.r, name, value)
	}
	if rq.length >= 0 {
		hd["Content-Length"] = []string{strconv.Itoa(rq.length)}
	}
	rq.status = code
	rq.started = true
	rq.w.WriteHeader(code)
	return true
}

// lines yields the CRLF-separated lines of s (none for "").
func lines(s string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for s != "" {
			line, rest, _ := strings.Cut(s, "\r\n")
			if !yield(line) {
				return
			}
			s = rest
		}
	}
}
