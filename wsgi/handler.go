// Package wsgi turns HTTP requests into WSGI calls on a pool of Python
// workers, and their responses back into HTTP.
//
// Handler is an http.Handler. It reads the whole request body first (in
// memory up to SpoolThreshold, then into an unlinked temporary file handed to
// the worker as a descriptor), so a client trickling its body never holds a
// worker. The response is streamed as the worker produces it; a file from
// wsgi.file_wrapper is sent by Go (sendfile on plain TCP).
package wsgi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"sync"
	"time"

	"github.com/hornbeam-go/hornbeam/httpguard"
	"github.com/hornbeam-go/hornbeam/internal/httpwsgi"
	"github.com/hornbeam-go/hornbeam/internal/wire"
	"github.com/hornbeam-go/hornbeam/pool"
	"github.com/hornbeam-go/hornbeam/pymarshal"
)

// Handler serves HTTP requests with a pool of WSGI workers.
type Handler struct {
	Pool *pool.Pool
	// Timeout bounds a request from arrival to its last byte from the worker:
	// past it the client gets 504 (or a cut connection if the response had
	// started) and the worker is killed and replaced. 0 = no limit.
	Timeout time.Duration
	// MaxBodySize is the largest request body accepted (413 beyond); 0 = no limit.
	MaxBodySize int64
	// SpoolThreshold is the largest body passed in memory; larger ones go
	// through a temporary file in SpoolDir (default os.TempDir()).
	SpoolThreshold int64
	SpoolDir       string
	// BodyTimeout closes a request whose body stops arriving for this long
	// (408 when the client can still read it). 0 = no limit.
	BodyTimeout time.Duration
	ErrorLog    *log.Logger
	// Observe, when set, is called once per request with the status sent
	// (0 when the connection was cut) and the time taken.
	Observe func(status int, d time.Duration)

	encoders sync.Pool
}

// DefaultSpoolThreshold is the SpoolThreshold used when it is 0 (see
// httpwsgi.DefaultSpoolThreshold for why it is what it is).
const DefaultSpoolThreshold = httpwsgi.DefaultSpoolThreshold

func (h *Handler) logf(format string, args ...any) {
	if h.ErrorLog != nil {
		h.ErrorLog.Printf(format, args...)
	}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	status := 0 // stays 0 when the connection is cut (abort panics)
	if h.Observe != nil {
		defer func() { h.Observe(status, time.Since(start)) }()
	}
	status = h.serve(w, r, start)
}

// requestContext is the context the request is served under: it ends at the
// timeout, or when the client is gone, which for HTTP/1.x is not when
// r.Context() ends: a client that half-closed its side after sending its
// request (`nc -N`) still gets its response (httpguard.Detach).
func (h *Handler) requestContext(r *http.Request, start time.Time) (context.Context, context.CancelFunc) {
	ctx, cancel := httpguard.Detach(r)
	if h.Timeout > 0 {
		var cancelDeadline context.CancelFunc
		ctx, cancelDeadline = context.WithDeadline(ctx, start.Add(h.Timeout))
		parent := cancel
		cancel = func() {
			cancelDeadline()
			parent()
		}
	}
	return ctx, cancel
}

// clientLeft reports whether ctx, from requestContext, ended because the
// client is gone (and not at the timeout).
func clientLeft(ctx context.Context) bool {
	return ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded)
}

// serve handles one request and returns the status sent (0: cut).
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, start time.Time) int {
	ctx, cancel := h.requestContext(r, start)
	defer cancel()
	body, file, n, status := httpwsgi.ReadBody(w, r, httpwsgi.BodyRules{MaxSize: h.MaxBodySize,
		SpoolThreshold: h.SpoolThreshold, SpoolDir: h.SpoolDir, IdleTimeout: h.BodyTimeout, Logf: h.levelf})
	if status == httpwsgi.Abandoned {
		httpwsgi.Abort()
	}
	if status != 0 {
		return status
	}
	if file != nil {
		defer file.Close()
	}

	e, _ := h.encoders.Get().(*pymarshal.Encoder)
	if e == nil {
		e = new(pymarshal.Encoder)
	}
	appendEnviron(e, r, body, n)
	label := r.Method + " " + r.URL.Path
	call, err := h.Pool.Do(ctx, e.Data(), file, label)
	h.encoders.Put(e)
	if err != nil {
		switch {
		case clientLeft(ctx):
			httpwsgi.Abort() // the client left while queued
		case errors.Is(err, context.DeadlineExceeded):
			httpwsgi.ErrorResponse(w, http.StatusServiceUnavailable, "Service Unavailable: no worker was free within the timeout")
			return http.StatusServiceUnavailable
		case errors.Is(err, pool.ErrStopped):
			httpwsgi.ErrorResponse(w, http.StatusServiceUnavailable, "Service Unavailable: the server is shutting down")
			return http.StatusServiceUnavailable
		default:
			h.logf("error: %s: %v", label, err)
			httpwsgi.ErrorResponse(w, http.StatusBadGateway, "Bad Gateway: the worker died")
			return http.StatusBadGateway
		}
	}
	rs := &response{h: h, w: w, r: r, call: call, label: label}
	return rs.run(ctx)
}

// levelf logs with a level prefix ("error: ...").
func (h *Handler) levelf(level, format string, args ...any) {
	h.logf(level+": "+format, args...)
}

// response relays one call's frames to the client.
type response struct {
	h       *Handler
	w       http.ResponseWriter
	r       *http.Request
	call    *pool.Call
	label   string
	status  int  // sent status, 0 before Start
	started bool // headers written
	broken  bool // the response cannot go on (a write to the client failed): cut it

	// Once the worker streams faster than the client reads, the body goes
	// through sp to a writer goroutine (see startSpool).
	sp     *spool
	spDone chan struct{} // closed when the writer goroutine has stopped
	spErr  error         // why it stopped early, if it did
}

// spoolMemory is how much of one response is kept in memory for a slow
// client before the rest goes to a temporary file.
const spoolMemory = 1 << 20

// startSpool hands the rest of the body to a writer goroutine, so that the
// worker never waits for the client: it can finish and take the next
// request while a slow client is still reading.
func (rs *response) startSpool() {
	rc := http.NewResponseController(rs.w)
	rc.Flush() // what was written directly goes first
	rs.sp = newSpool(rs.h.SpoolDir, spoolMemory)
	rs.spDone = make(chan struct{})
	go func() {
		defer close(rs.spDone)
		defer rs.sp.release()
		buf := make([]byte, 64<<10)
		for {
			p, ok, err := rs.sp.next(buf)
			if err != nil || !ok {
				rs.spErr = err
				return
			}
			if _, err := rs.w.Write(p); err != nil {
				rs.spErr = err
				return
			}
			if rs.sp.empty() {
				rc.Flush() // streaming: send what we have
			}
		}
	}()
}

// stopSpool waits until the writer has sent all that is queued, then
// writing is direct again.
func (rs *response) stopSpool() error {
	if rs.sp == nil {
		return nil
	}
	rs.sp.close()
	<-rs.spDone
	rs.sp = nil
	return rs.spErr
}

// cutSpool stops the writer at once, even in the middle of a write to a
// client that does not read, before the connection is cut.
func (rs *response) cutSpool() {
	if rs.sp == nil {
		return
	}
	rs.sp.release()
	rs.sp.close()
	http.NewResponseController(rs.w).SetWriteDeadline(time.Now())
	<-rs.spDone
	rs.sp = nil
}

// streamGrace is how long an incomplete response may wait for its next
// frames before a writer goroutine takes over (see run).
const streamGrace = time.Millisecond

func (rs *response) run(ctx context.Context) int {
	frames := rs.call.Frames()
	var (
		grace  *time.Timer // running while an incomplete response waits
		graced bool
	)
	defer func() {
		if grace != nil {
			grace.Stop()
		}
	}()
	for {
		var batch []wire.Frame
		var ok bool
		var graceC <-chan time.Time
		if grace != nil {
			graceC = grace.C
		}
		var spDone <-chan struct{}
		if rs.sp != nil {
			spDone = rs.spDone
		}
		select {
		case batch, ok = <-frames:
		case <-ctx.Done():
			return rs.interrupted(ctx)
		case <-graceC:
			grace = nil
			rs.startSpool()
			continue
		case <-spDone:
			// The writer stopped before the spool was closed: a write
			// to the client failed.
			rs.leave(ctx, nil)
		}
		if grace != nil {
			grace.Stop()
			grace = nil
		}
		if !ok {
			rs.call.Close(false)
			rs.h.logf("error: %s: worker %d died while handling it", rs.label, rs.call.WorkerPID())
			rs.stopSpool()
			return rs.fail(http.StatusBadGateway, "Bad Gateway: the worker died while handling the request")
		}
		for i, f := range batch {
			status, done := rs.frame(f)
			if rs.broken {
				rs.leave(ctx, batch[i+1:])
			}
			if done {
				return status
			}
		}
		if len(frames) == 0 && rs.started && rs.sp == nil {
			// The response is still coming. A framework's one-chunk
			// iterable (Flask, Django) is a moment from its End: wait
			// for it once, briefly, with what was written still
			// unflushed, so that the response leaves in one write. Past
			// that a writer goroutine sends the rest, flushing whenever
			// it catches up (a stream, or a client too slow to read).
			if !graced {
				graced = true
				grace = time.NewTimer(streamGrace)
			} else {
				rs.startSpool()
			}
		}
	}
}

// frame applies one frame; done reports that the response is over.
func (rs *response) frame(f wire.Frame) (status int, done bool) {
	switch f.Type {
	case wire.Hints:
		rs.hints(f.Payload)
	case wire.Start:
		if !rs.start(f.Payload) {
			rs.call.Close(true) // the worker goes on; its frames are dropped
			return rs.fail(http.StatusInternalServerError, "Internal Server Error"), true
		}
	case wire.Body:
		defer f.Release() // written to the client or copied into the spool
		if rs.sp == nil {
			if _, err := rs.w.Write(f.Payload); err != nil {
				rs.broken = true
			}
		} else if err := rs.sp.write(f.Payload); err != nil {
			// The worker cannot be let go on sending what nobody takes.
			rs.h.Pool.Kill(rs.call, fmt.Sprintf("request %s: %v", rs.label, err))
			rs.call.Close(false)
			rs.cutSpool()
			httpwsgi.Abort()
		}
	case wire.File:
		if rs.stopSpool() != nil {
			f.Discard()
			rs.broken = true
			break
		}
		rs.broken = !rs.sendFile(f)
	case wire.End:
		rs.call.Close(true) // the worker is free; the client may still be reading
		if !rs.started {
			return rs.fail(http.StatusInternalServerError, "Internal Server Error"), true
		}
		if err := rs.stopSpool(); err != nil {
			httpwsgi.Abort()
		}
		return rs.status, true
	case wire.Error:
		rs.call.Close(true)
		msg, _ := pymarshal.Unmarshal(f.Payload)
		if !rs.started {
			rs.h.logf("error: %s: %v (500)", rs.label, msg)
			return rs.fail(http.StatusInternalServerError, "Internal Server Error"), true
		}
		rs.h.logf("error: %s: %v after the response started; closing the connection", rs.label, msg)
		rs.stopSpool()
		http.NewResponseController(rs.w).Flush() // what the app sent, then the cut
		httpwsgi.Abort()
	default:
		rs.h.logf("error: %s: unexpected %s frame from worker %d", rs.label, wire.TypeName(f.Type), rs.call.WorkerPID())
	}
	return 0, false
}

// interrupted handles the request's context ending: the timeout or the
// client leaving.
func (rs *response) interrupted(ctx context.Context) int {
	if clientLeft(ctx) {
		rs.leave(ctx, nil)
	}
	rs.cutSpool()
	elapsed := time.Since(rs.call.Started()).Round(time.Millisecond)
	rs.h.Pool.Timeout(rs.call, fmt.Sprintf("request %s (request id %s) timed out after %s (--timeout %s)", rs.label, httpwsgi.OrDash(rs.r.Header.Get("X-Request-Id")), elapsed, rs.h.Timeout))
	rs.call.Close(false)
	return rs.fail(http.StatusGatewayTimeout, "Gateway Timeout: the application did not answer in time")
}

// leave gives up a response whose client is gone and cuts the connection.
// rest are the frames received and not yet handled. The worker may still
// be busy with the request: its capacity stays taken until it finishes,
// bounded by the timeout (see drain).
func (rs *response) leave(ctx context.Context, rest []wire.Frame) {
	rs.cutSpool()
	ended := false
	for _, f := range rest {
		ended = ended || f.Type == wire.End || f.Type == wire.Error
		f.Discard()
	}
	if ended {
		rs.call.Close(true)
	} else {
		deadline, ok := ctx.Deadline()
		go rs.drain(deadline, ok)
	}
	httpwsgi.Abort()
}

// drain waits for the worker to finish a request whose client left, so its
// capacity is not handed out while it still works; past the request's
// deadline the worker is killed as for any timeout.
func (rs *response) drain(deadline time.Time, hasDeadline bool) {
	var expired <-chan time.Time
	if hasDeadline {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		expired = t.C
	}
	for {
		select {
		case batch, ok := <-rs.call.Frames():
			end := !ok
			for _, f := range batch {
				end = end || f.Type == wire.End || f.Type == wire.Error
				f.Discard()
			}
			if end {
				rs.call.Close(ok)
				return
			}
		case <-expired:
			rs.h.Pool.Timeout(rs.call, fmt.Sprintf("request %s timed out after its client left (--timeout %s)", rs.label, rs.h.Timeout))
			rs.call.Close(false)
			return
		}
	}
}

// fail sends an error status, or cuts the connection if the response has
// already started.
func (rs *response) fail(code int, msg string) int {
	if rs.started {
		httpwsgi.Abort()
	}
	httpwsgi.ErrorResponse(rs.w, code, msg)
	return code
}

// decodeHeaders reads a marshal list of (name, value) str pairs.
func decodeHeaders(v any) ([][2]string, error) {
	var items []any
	switch l := v.(type) {
	case pymarshal.List:
		items = l
	case pymarshal.Tuple:
		items = l
	default:
		return nil, fmt.Errorf("headers are a %T, not a list", v)
	}
	out := make([][2]string, 0, len(items))
	for _, it := range items {
		t, ok := it.(pymarshal.Tuple)
		if !ok || len(t) != 2 {
			return nil, fmt.Errorf("header %v is not a (name, value) pair", it)
		}
		name, ok1 := t[0].(string)
		value, ok2 := t[1].(string)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("header %v is not a pair of str", it)
		}
		value, ok = latin1Bytes(value)
		if !ok {
			return nil, fmt.Errorf("header %s value %q is not latin-1", name, t[1])
		}
		if !httpwsgi.ValidHeader(name, value) {
			return nil, fmt.Errorf("invalid header %q: %q", name, value)
		}
		out = append(out, [2]string{name, value})
	}
	return out, nil
}

// latin1Bytes turns a str of code points below 256 into the bytes they
// stand for (PEP 3333 native strings).
func latin1Bytes(s string) (string, bool) {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return s, true
	}
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xFF {
			return "", false
		}
		b = append(b, byte(r))
	}
	return string(b), true
}

func (rs *response) hints(payload []byte) {
	if rs.started || (rs.r.ProtoMajor == 1 && rs.r.ProtoMinor == 0) {
		return // too late, or an HTTP/1.0 client, which must not get a 1xx
	}
	v, err := pymarshal.Unmarshal(payload)
	var hs [][2]string
	if err == nil {
		hs, err = decodeHeaders(v)
	}
	if err != nil {
		rs.h.logf("warning: %s: bad early hints: %v", rs.label, err)
		return
	}
	httpwsgi.WriteEarlyHints(rs.w, hs)
}

// start applies the app's status and headers and writes them.
func (rs *response) start(payload []byte) bool {
	statusLine, hs, err := decodeStart(payload)
	if err != nil {
		rs.h.logf("error: %s: the app sent an invalid response start: %v (500)", rs.label, err)
		return false
	}
	code, err := httpwsgi.ParseStatus(statusLine)
	if err != nil {
		rs.h.logf("error: %s: the app sent an invalid status %q: %v (500)", rs.label, statusLine, err)
		return false
	}
	hd := rs.w.Header()
	for _, kv := range hs {
		httpwsgi.AddHeader(hd, rs.r, kv[0], kv[1])
	}
	rs.status = code
	rs.started = true
	rs.w.WriteHeader(code)
	return true
}

// sendFile sends the file of a File frame: offset and length in the
// payload. false: the response cannot go on (the file could not be read or
// the client written to).
func (rs *response) sendFile(f wire.Frame) bool {
	file := f.FD
	defer file.Close()
	v, err := pymarshal.Unmarshal(f.Payload)
	t, ok := v.(pymarshal.Tuple)
	if err != nil || !ok || len(t) != 2 {
		rs.h.logf("error: %s: malformed File frame", rs.label)
		return false
	}
	offset, _ := t[0].(int64)
	length, _ := t[1].(int64)
	if length < 0 {
		st, err := file.Stat()
		if err != nil {
			rs.h.logf("error: %s: stat of the file to send: %v", rs.label, err)
			return false
		}
		length = max(st.Size()-offset, 0)
	}
	if _, err := file.Seek(offset, io.SeekStart); err != nil {
		rs.h.logf("error: %s: seek in the file to send: %v", rs.label, err)
		return false
	}
	_, err = io.Copy(rs.w, io.LimitReader(file, length))
	return err == nil
}
