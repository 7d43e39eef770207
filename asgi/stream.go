package asgi

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"

	"github.com/hornbeam-go/hornbeam/internal/cpython"
	"github.com/hornbeam-go/hornbeam/internal/httpwsgi"
	"github.com/hornbeam-go/hornbeam/pymarshal"
)

// op is a message from the app (an ASGI send, or its task's end), parsed
// on the loop's thread and carried out by the stream's goroutine.
type op struct {
	kind    int
	status  int
	headers [][2]string
	data    []byte
	more    bool // more_body, more_trailers; for opWSSend: text
	text    string
	code    int
	hasText bool // opAccept: a subprotocol was chosen; opDone: an error
	fd      int  // opZeroCopy: a descriptor of the app's file, ours to close
	off, n  int64
}

// drop releases what an op not carried out holds (a zerocopysend's
// descriptor).
func (o op) drop() {
	if o.kind == opZeroCopy && o.fd > 0 {
		syscall.Close(o.fd)
	}
}

// stream is one HTTP request or WebSocket: the ops the app sent that its
// goroutine has not carried out yet, and the credit of its send().
type stream struct {
	s      *Server
	id     int64
	notify chan struct{} // an op was queued (capacity 1)
	want   chan struct{} // the app took a body chunk or message (credits for reading)

	mu      sync.Mutex
	ops     []op
	queued  int  // bytes queued by send() and not yet written to the client
	blocked bool // the app's send() waits for evCredit
	done    bool // the goroutine has left: ops are dropped

	topics []string // (Server.psmu) those it is subscribed to (ws_subscribe)

	kick   func() // (mu) an accepted WebSocket's writer (websocket.go)
	onWant func() // (mu) an accepted WebSocket's credit: takes opWant instead of want

	// closer closes a WebSocket, or asks its goroutine to (nil for HTTP).
	closer func(code int, reason string) // (mu)
}

func (s *Server) newStream(wantCap int) *stream {
	return &stream{s: s, id: s.nextID.Add(1), notify: make(chan struct{}, 1), want: make(chan struct{}, wantCap)}
}

// closeWS closes a WebSocket with code (the server shuts down); a no-op
// for HTTP.
func (st *stream) closeWS(code int, reason string) {
	st.mu.Lock()
	f := st.closer
	st.mu.Unlock()
	if f != nil {
		f(code, reason)
	}
}

// take returns the ops queued so far.
func (st *stream) take() []op {
	st.mu.Lock()
	ops := st.ops
	st.ops = nil
	st.mu.Unlock()
	return ops
}

// requeue puts ops taken but not carried out back in front of the queue.
func (st *stream) requeue(ops []op) {
	if len(ops) == 0 {
		return
	}
	st.mu.Lock()
	st.ops = append(append([]op(nil), ops...), st.ops...)
	st.mu.Unlock()
	select {
	case st.notify <- struct{}{}:
	default:
	}
}

// sent gives back the credit of n bytes written to the client; the app's
// send() goes on once half the window is free.
func (st *stream) sent(n int) {
	st.mu.Lock()
	st.queued -= n
	wake := st.blocked && st.queued <= window/2
	if wake {
		st.blocked = false
	}
	st.mu.Unlock()
	if wake {
		st.s.post(evCredit, st.id)
	}
}

// leave marks the stream's goroutine gone: the app's later sends are
// dropped and its receive() returns a disconnect.
func (st *stream) leave() {
	st.mu.Lock()
	st.done = true
	lost := st.ops
	st.ops = nil
	st.mu.Unlock()
	st.s.logLost(lost)
	st.s.remove(st.id)
	st.s.unsubscribeAll(st)
	st.s.post(evDisconnect, st.id)
}

// logLost logs the error among ops its goroutine will not carry out: a
// task that raised after its response was over (Starlette re-raises after
// sending its 500), or after its client left.
func (s *Server) logLost(ops []op) {
	for _, o := range ops {
		o.drop()
		if o.kind == opDone && o.hasText && !strings.HasPrefix(o.text, "cancelled") {
			s.logf("error: %s", strings.TrimRight(o.text, "\n"))
		}
	}
}

// emit is hornbeam_asgi_emit(op): the app's send (loop thread, GIL held).
// It returns 1 when send() must wait for evCredit, else 0; a bad message
// raises in the app.
func (s *Server) emit(arg cpython.Object) (ret cpython.Object) {
	defer s.recoverTo(&ret)
	py := s.py
	v, err := py.ToGo(arg)
	t, _ := v.(pymarshal.Tuple)
	if err != nil || len(t) < 2 {
		py.SetError(false, fmt.Sprintf("hornbeam: bad ASGI op: %v", err))
		return 0
	}
	kind, _ := t[0].(int64)
	sid, _ := t[1].(int64)
	wait := false
	switch kind {
	case opLifespan:
		select {
		case s.lifespan <- lifespanResult{int(sid), str(t, 2), str(t, 3), str(t, 4)}:
		default:
		}
	case opPong:
		select {
		case s.pong <- struct{}{}:
		default:
		}
	case opSubscribe:
		s.subscribe(sid, str(t, 2), boolAt(t, 3))
	default:
		o, err := parseOp(int(kind), t)
		if err != nil {
			py.SetError(false, err.Error())
			return 0
		}
		st := s.get(sid)
		if st == nil {
			o.drop()
			if o.kind == opDone && o.hasText && !strings.HasPrefix(o.text, "cancelled") {
				s.logf("error: %s", strings.TrimRight(o.text, "\n")) // after the response: nobody else will log it
			}
			break
		}
		wait = st.push(o)
	}
	r, _ := py.NewInt(map[bool]int64{false: 0, true: 1}[wait])
	return r
}

// push queues o for the stream's goroutine; true: send() must wait.
func (st *stream) push(o op) (wait bool) {
	if o.kind == opWant {
		st.mu.Lock()
		f := st.onWant
		if f == nil {
			select {
			case st.want <- struct{}{}:
			default:
			}
		}
		st.mu.Unlock()
		if f != nil {
			f()
		}
		return false
	}
	st.mu.Lock()
	if st.done {
		st.mu.Unlock()
		st.s.logLost([]op{o})
		return false
	}
	st.ops = append(st.ops, o)
	if o.kind == opBody || o.kind == opWSSend {
		st.queued += len(o.data)
		if st.queued > window {
			st.blocked, wait = true, true
		}
	}
	kick := st.kick
	st.mu.Unlock()
	if kick != nil {
		kick() // an accepted WebSocket: its writer runs when there is work
		return wait
	}
	select {
	case st.notify <- struct{}{}:
	default:
	}
	return wait
}

func str(t pymarshal.Tuple, i int) string {
	if i < len(t) {
		switch v := t[i].(type) {
		case string:
			return v
		case []byte:
			return string(v)
		}
	}
	return ""
}

func boolAt(t pymarshal.Tuple, i int) bool {
	if i < len(t) {
		b, _ := t[i].(bool)
		return b
	}
	return false
}

// parseOp checks an op's fields: a bad status or header raises in the
// app's send(), which is where the mistake is.
func parseOp(kind int, t pymarshal.Tuple) (op, error) {
	o := op{kind: kind}
	switch kind {
	case opStart:
		st, _ := t[2].(int64)
		if st < 200 || st > 999 {
			return o, fmt.Errorf("http.response.start: status %d: want 200 to 999 (1xx: http.response.early_hint)", st)
		}
		o.status = int(st)
		hs, err := headers(t[3])
		if err != nil {
			return o, fmt.Errorf("http.response.start: %w", err)
		}
		o.headers, o.more = hs, boolAt(t, 4)
	case opBody:
		o.data, _ = t[2].([]byte)
		o.more = boolAt(t, 3)
	case opWSSend:
		o.more = boolAt(t, 2) // text
		o.data, _ = t[3].([]byte)
	case opHint:
		links, _ := t[2].(pymarshal.List)
		for _, l := range links {
			b, _ := l.([]byte)
			if !httpwsgi.ValidHeader("Link", string(b)) {
				return o, fmt.Errorf("http.response.early_hint: invalid link %q", b)
			}
			o.headers = append(o.headers, [2]string{"Link", string(b)})
		}
	case opTrailers:
		hs, err := headers(t[2])
		if err != nil {
			return o, fmt.Errorf("http.response.trailers: %w", err)
		}
		o.headers, o.more = hs, boolAt(t, 3)
	case opFile:
		o.text = str(t, 2)
	case opZeroCopy:
		fd, _ := t[2].(int64)
		off, _ := t[3].(int64)
		n, _ := t[4].(int64)
		o.fd, o.off, o.n, o.more = int(fd), off, n, boolAt(t, 5)
	case opAccept:
		if t[2] != nil {
			o.text, o.hasText = str(t, 2), true
			if !httpwsgi.ValidHeader("Sec-WebSocket-Protocol", o.text) {
				return o, fmt.Errorf("websocket.accept: invalid subprotocol %q", o.text)
			}
		}
		hs, err := headers(t[3])
		if err != nil {
			return o, fmt.Errorf("websocket.accept: %w", err)
		}
		o.headers = hs
	case opWSClose:
		c, _ := t[2].(int64)
		o.code, o.text = int(c), str(t, 3)
		if !validCloseCode(o.code) {
			return o, fmt.Errorf("websocket.close: code %d cannot be sent (want 1000-1003, 1007-1014 or 3000-4999)", c)
		}
		if len(o.text) > 123 {
			return o, errors.New("websocket.close: the reason is longer than 123 bytes")
		}
	case opDone:
		if t[2] != nil {
			o.text, o.hasText = str(t, 2), true
		}
	case opWant:
	default:
		return o, fmt.Errorf("hornbeam: unknown ASGI op %d", kind)
	}
	return o, nil
}

func headers(v any) ([][2]string, error) {
	l, _ := v.(pymarshal.List)
	out := make([][2]string, 0, len(l))
	for _, p := range l {
		t, _ := p.(pymarshal.Tuple)
		if len(t) != 2 {
			return nil, errors.New("a header is not a (name, value) pair")
		}
		n, _ := t[0].([]byte)
		val, _ := t[1].([]byte)
		if !httpwsgi.ValidHeader(string(n), string(val)) {
			return nil, fmt.Errorf("invalid header %q: %q (names are tokens; values have no CR, LF or NUL)", n, val)
		}
		out = append(out, [2]string{string(n), string(val)})
	}
	return out, nil
}

// validCloseCode: the codes an endpoint may send (RFC 6455 7.4).
func validCloseCode(c int) bool {
	return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999)
}
