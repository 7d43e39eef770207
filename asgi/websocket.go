package asgi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/hornbeam-go/hornbeam/internal/httpwsgi"
	"github.com/hornbeam-go/hornbeam/pymarshal"
)

// isWebSocket: an HTTP/1.1 upgrade to WebSocket (RFC 6455).
func isWebSocket(r *http.Request) bool {
	return r.ProtoMajor == 1 && strings.EqualFold(r.Header.Get("Upgrade"), "websocket") &&
		headerHasToken(r.Header, "Connection", "upgrade")
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

type wsClose struct {
	code   int
	reason string
}

// serveWS runs a WebSocket scope: the app accepts (then the session runs
// until either side closes, without this goroutine: see wsSession),
// closes before accepting (403), or answers with an HTTP response (the
// websocket.http.response extension).
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request, app int) {
	if s.closing.Load() {
		httpwsgi.WriteError(w, http.StatusServiceUnavailable, "the server is shutting down")
		return
	}
	st := s.newStream(wsWindow)
	for i := 0; i < wsWindow; i++ {
		st.want <- struct{}{}
	}
	closed := make(chan wsClose, 1)
	st.closer = func(code int, reason string) {
		select {
		case closed <- wsClose{code, reason}:
		default:
		}
	}
	s.add(st)
	handedOff := false
	defer func() {
		if !handedOff {
			st.leave()
		}
	}()
	s.post(evWS, st.id, func(e *pymarshal.Encoder) { s.appendScope(e, r, "websocket", app) })
	resp := &response{w: w, r: r}
	for {
		select {
		case <-st.notify:
		case <-r.Context().Done():
			s.post(evWSClosed, st.id, 1006, "")
			return
		case c := <-closed:
			s.post(evWSClosed, st.id, c.code, c.reason)
			httpwsgi.WriteError(w, http.StatusServiceUnavailable, "the server is shutting down")
			return
		}
		ops := st.take()
		for i, o := range ops {
			switch o.kind {
			case opAccept:
				hd := w.Header()
				for _, h := range o.headers {
					httpwsgi.AddHeader(hd, r, h[0], h[1])
				}
				var subs []string
				if o.hasText {
					subs = []string{o.text}
				}
				hj := &wsHijack{ResponseWriter: w}
				c, err := websocket.Accept(hj, r, &websocket.AcceptOptions{
					Subprotocols:       subs,
					InsecureSkipVerify: true, // Origin checks are the app's, as with every ASGI server
					CompressionMode:    s.compression(),
				})
				if err != nil || hj.io == nil {
					if c != nil {
						c.CloseNow()
					}
					s.post(evWSClosed, st.id, 1006, "")
					return
				}
				st.requeue(ops[i+1:]) // what the app sent right after accepting
				handedOff = true
				s.startSession(st, c, hj.io, r.URL.Path)
				return // the connection is hijacked: net/http's goroutine ends here
			case opWSClose, opDone:
				if o.kind == opDone && o.hasText {
					s.logf("error: %s", strings.TrimRight(o.text, "\n"))
				}
				if !resp.wrote {
					// Closed (or returned) before accepting: 403, as the
					// spec says.
					httpwsgi.WriteError(w, http.StatusForbidden, "Forbidden")
				}
				return
			case opStart, opBody, opHint, opTrailers, opFile:
				if _, end := s.apply(st, resp, o); end {
					return
				}
			}
		}
	}
}

func (s *Server) compression() websocket.CompressionMode {
	if s.cfg.WSDeflate {
		return websocket.CompressionNoContextTakeover
	}
	return websocket.CompressionDisabled
}

// wsSession is an accepted WebSocket. It has no goroutine of its own
// while idle: its socket is parked in the poller (wspoll.go), and a
// goroutine starts when there is something to do, and ends after:
//
//   - read, when the client's bytes arrive: it reads messages (pongs,
//     pings, closes on the way) until none is waiting at a message
//     boundary (errIdle, see wsIO; after a message it waits lingerFor
//     for the next one first), parks the socket again and ends; or
//     when the app has not taken wsWindow messages (credits), until it
//     takes one (credit);
//   - drain, when the app sends (kick);
//   - pingNow, a timer's, every --ws-ping-interval.
//
// A socket that cannot be parked (TLS, PROXY protocol: see newWSIO) keeps
// its read goroutine, waiting in Read, as before.
//
// The session ends (end) once, in read, after the connection's error:
// whoever else closes the connection (close, abort) wakes read to see it.
type wsSession struct {
	s    *Server
	st   *stream
	c    *websocket.Conn
	io   *wsIO
	path string  // for the log
	p    *poller // nil: not parked (a goroutine waits in Read)
	pid  uint64  // its id in p

	// st.mu:
	credits     int  // messages the app may be sent before it takes some
	reading     bool // read runs (or is about to)
	armed       bool // parked: the poller waits for the socket's bytes
	registered  bool // in the poller's epoll set
	writing     bool // drain runs
	wclosed     bool // closed: drain writes nothing more
	closing     bool // we closed the connection, with closeCode, closeReason
	closeCode   int
	closeReason string
	ended       bool
	ping        *time.Timer
}

// wsPoll is the process's poller, started with its first WebSocket.
var wsPoll struct {
	once sync.Once
	p    *poller
	err  error
}

func (s *Server) startSession(st *stream, c *websocket.Conn, wio *wsIO, path string) {
	c.SetReadLimit(s.cfg.WSMaxMessage)
	s.sockets.Add(1)
	ws := &wsSession{s: s, st: st, c: c, io: wio, path: path}
	if wio.raw != nil {
		wsPoll.once.Do(func() {
			wsPoll.p, wsPoll.err = newPoller()
			if wsPoll.err != nil {
				s.logf("warning: %v: each idle WebSocket keeps a goroutine", wsPoll.err)
			}
		})
		if wsPoll.p != nil {
			ws.p = wsPoll.p
			ws.pid = ws.p.add(ws)
			wio.idleOK.Store(true)
		}
	}
	st.mu.Lock()
	ws.credits = len(st.want) // what the app gave before accepting
	st.onWant = ws.credit
	st.want = nil // credits count from here (push reads want under st.mu)
	st.kick = ws.kick
	st.closer = func(code int, reason string) { go ws.close(code, reason) }
	pending := len(st.ops) > 0
	ws.reading = true
	if s.cfg.WSPingInterval > 0 {
		ws.ping = time.AfterFunc(s.cfg.WSPingInterval, ws.pingNow)
	}
	st.mu.Unlock()
	if pending {
		ws.kick()
	}
	if s.closing.Load() {
		// Shutdown went through the streams while this one was accepting.
		go ws.close(int(s.closeCode.Load()), "server shutting down")
	}
	go ws.read()
}

// read passes the client's messages to the app, and ends the session on
// the connection's error: the client's close code, 1006 for a broken
// connection, 1007 for text that is not UTF-8, 1009 for a message over
// the limit, or the code we closed with.
func (ws *wsSession) read() {
	st, s := ws.st, ws.s
	for {
		st.mu.Lock()
		if ws.credits <= 0 && !ws.closing {
			ws.reading = false // credit starts reading again
			st.mu.Unlock()
			return
		}
		st.mu.Unlock()
		// No deadline: a read waits only within a message (an idle socket
		// parks); closing the connection ends it.
		typ, data, err := ws.c.Read(context.Background())
		if errors.Is(err, errIdle) {
			if ws.park() {
				return
			}
			continue
		}
		if err != nil {
			ws.end(err)
			return
		}
		text := typ == websocket.MessageText
		if text && !utf8.Valid(data) {
			// The library does not check (RFC 6455 8.1): close with 1007;
			// the next Read fails and ends the session.
			ws.close(int(websocket.StatusInvalidFramePayloadData), "invalid UTF-8 in a text message")
			continue
		}
		s.post(evWSMsg, st.id, text, data)
		st.mu.Lock()
		ws.credits--
		st.mu.Unlock()
		ws.io.Linger()
	}
}

// park hands the socket to the poller (read's goroutine then ends): true,
// or false when it must be read again at once.
func (ws *wsSession) park() bool {
	st := ws.st
	st.mu.Lock()
	if ws.closing || ws.p == nil {
		st.mu.Unlock()
		return false
	}
	first := !ws.registered
	ws.registered = true
	ws.reading, ws.armed = false, true
	st.mu.Unlock()
	err := ws.p.arm(ws.io.raw, ws.pid, first)
	if err == nil {
		return true // from here the poller (readable) or wake may start read
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if !ws.armed {
		return true // wake took it meanwhile: another read runs
	}
	// A closed socket (its next read fails), or epoll refuses it: this
	// socket's reads wait in Read from now on.
	ws.io.idleOK.Store(false)
	ws.armed, ws.reading = false, true
	return false
}

// readable is the poller's: the parked socket has bytes, or the client
// closed it.
func (ws *wsSession) readable() {
	ws.startReadIf(func() bool { return ws.armed })
}

// wake starts read, parked or out of credits, to see that we closed the
// connection (and end the session).
func (ws *wsSession) wake() {
	ws.startReadIf(func() bool { return !ws.reading && !ws.ended })
}

// credit: the app took a message (opWant).
func (ws *wsSession) credit() {
	ws.startReadIf(func() bool {
		ws.credits++
		return ws.credits == 1 && !ws.reading && !ws.armed && !ws.ended
	})
}

// startReadIf starts the session's reader when want, run with st.mu held,
// says so: the socket is then no longer parked, and is being read.
func (ws *wsSession) startReadIf(want func() bool) {
	st := ws.st
	st.mu.Lock()
	start := want()
	if start {
		ws.armed, ws.reading = false, true
	}
	st.mu.Unlock()
	if start {
		go ws.read()
	}
}

// close closes the connection with code (the app's websocket.close, its
// task's end, 1007, or Shutdown's 1001/1012), the close handshake
// included, and has read end the session with that code.
func (ws *wsSession) close(code int, reason string) {
	st := ws.st
	st.mu.Lock()
	if ws.ended {
		st.mu.Unlock()
		return
	}
	if !ws.closing {
		ws.closing, ws.closeCode, ws.closeReason = true, code, reason
	}
	st.mu.Unlock()
	ws.io.idleOK.Store(false) // Close reads the client's close frame: let it wait for it
	ws.c.Close(websocket.StatusCode(code), reason)
	ws.wake()
}

// abort closes the connection without a handshake (a write failed, no
// pong): the app sees 1006.
func (ws *wsSession) abort() {
	st := ws.st
	st.mu.Lock()
	if !ws.closing {
		ws.closing, ws.closeCode, ws.closeReason = true, 1006, ""
	}
	st.mu.Unlock()
	ws.io.idleOK.Store(false)
	ws.c.CloseNow()
	ws.wake()
}

// end ends the session after the connection's error err (read's
// goroutine): the app gets websocket.disconnect, the stream goes.
func (ws *wsSession) end(err error) {
	st, s := ws.st, ws.s
	code, reason := 1006, ""
	var ce websocket.CloseError
	switch {
	case errors.As(err, &ce):
		code, reason = int(ce.Code), ce.Reason
	case errors.Is(err, websocket.ErrMessageTooBig):
		code = int(websocket.StatusMessageTooBig) // coder/websocket has sent the close frame
	}
	st.mu.Lock()
	closing := ws.closing
	if closing {
		code, reason = ws.closeCode, ws.closeReason
	}
	ws.ended, ws.reading, ws.wclosed = true, false, true
	t := ws.ping
	st.mu.Unlock()
	if t != nil {
		t.Stop()
	}
	s.post(evWSClosed, st.id, code, reason)
	if code == int(websocket.StatusMessageTooBig) && !closing {
		ws.io.idleOK.Store(false)
		ws.c.Close(websocket.StatusMessageTooBig, "") // waits for the client's close frame
	}
	ws.c.CloseNow()
	if ws.p != nil {
		ws.p.remove(ws.io.raw, ws.pid)
	}
	s.sockets.Done()
	st.leave()
}

// pingNow pings (a timer's goroutine); a client that does not answer
// within --ws-ping-timeout is closed.
func (ws *wsSession) pingNow() {
	s, st := ws.s, ws.st
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.WSPingTimeout)
	err := ws.c.Ping(ctx) // the pong wakes the parked socket; read takes it
	cancel()
	st.mu.Lock()
	over := ws.ended || ws.closing
	t := ws.ping
	st.mu.Unlock()
	if over {
		return
	}
	if err != nil {
		s.logf("info: WebSocket %s: no pong within %s (--ws-ping-timeout): closed", ws.path, s.cfg.WSPingTimeout)
		ws.abort()
		return
	}
	t.Reset(s.cfg.WSPingInterval)
}

// kick starts drain when the app has sent something (stream.push).
func (ws *wsSession) kick() {
	st := ws.st
	st.mu.Lock()
	start := !ws.writing && !ws.wclosed
	if start {
		ws.writing = true
	}
	st.mu.Unlock()
	if start {
		go ws.drain()
	}
}

// drain writes the app's ops, while there are some.
func (ws *wsSession) drain() {
	st, s, c := ws.st, ws.s, ws.c
	for {
		st.mu.Lock()
		ops := st.ops
		st.ops = nil
		if len(ops) == 0 || ws.wclosed {
			ws.writing = false
			st.mu.Unlock()
			return
		}
		st.mu.Unlock()
		for _, o := range ops {
			end := false
			switch o.kind {
			case opWSSend:
				typ := websocket.MessageBinary
				if o.more {
					typ = websocket.MessageText
				}
				// No deadline: a client that does not read blocks this
				// write until the ping timeout closes the connection.
				if err := c.Write(context.Background(), typ, o.data); err != nil {
					ws.abort()
					end = true
				}
				st.sent(len(o.data))
			case opWSClose:
				ws.close(o.code, o.text)
				end = true
			case opDone:
				// The app's task ended without a close: 1000, or 1011
				// after an exception (logged).
				code := websocket.StatusNormalClosure
				if o.hasText {
					s.logf("error: %s", strings.TrimRight(o.text, "\n"))
					code = websocket.StatusInternalError
				}
				ws.close(int(code), "")
				end = true
			}
			if end {
				st.mu.Lock()
				ws.wclosed, ws.writing = true, false
				st.ops = nil
				st.mu.Unlock()
				return
			}
		}
	}
}
