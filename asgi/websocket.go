package asgi

import (
	"context"
	"errors"
	"net/http"
	"strings"
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
// until either side closes), closes before accepting (403), or answers
// with an HTTP response (the websocket.http.response extension).
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
	defer st.leave()
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
				c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
					Subprotocols:       subs,
					InsecureSkipVerify: true, // Origin checks are the app's, as with every ASGI server
					CompressionMode:    s.compression(),
				})
				if err != nil {
					s.post(evWSClosed, st.id, 1006, "")
					return
				}
				s.sockets.Add(1)
				defer s.sockets.Done()
				st.requeue(ops[i+1:]) // what the app sent right after accepting
				s.session(st, c, r)
				return
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

// session runs an accepted WebSocket until it closes. An idle socket
// costs one goroutine, this one, blocked reading the client's next message
// (readWS); what the app sends is written by a goroutine started when there
// is something to write (wsWriter), pings by a timer.
func (s *Server) session(st *stream, c *websocket.Conn, r *http.Request) {
	c.SetReadLimit(s.cfg.WSMaxMessage)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wr := &wsWriter{s: s, st: st, c: c, ctx: ctx}
	st.mu.Lock()
	st.kick = wr.kick
	pending := len(st.ops) > 0
	st.closer = func(code int, reason string) {
		go func() {
			c.Close(websocket.StatusCode(code), reason)
			s.post(evWSClosed, st.id, code, reason)
		}()
	}
	st.mu.Unlock()
	if pending {
		wr.kick()
	}
	if s.cfg.WSPingInterval > 0 {
		var t *time.Timer
		t = time.AfterFunc(s.cfg.WSPingInterval, func() {
			pctx, pcancel := context.WithTimeout(ctx, s.cfg.WSPingTimeout)
			defer pcancel()
			if err := c.Ping(pctx); err != nil {
				if ctx.Err() == nil {
					s.logf("info: WebSocket %s: no pong within %s (--ws-ping-timeout): closed", r.URL.Path, s.cfg.WSPingTimeout)
					c.CloseNow()
				}
				return
			}
			t.Reset(s.cfg.WSPingInterval)
		})
		defer t.Stop()
	}
	s.readWS(ctx, st, c)
}

// wsWriter writes an accepted WebSocket's ops, in a goroutine that runs
// while there are some (kick starts it).
type wsWriter struct {
	s       *Server
	st      *stream
	c       *websocket.Conn
	ctx     context.Context
	running bool // (st.mu) a goroutine is writing
	closed  bool // (st.mu) closed: nothing more is written
}

func (w *wsWriter) kick() {
	w.st.mu.Lock()
	start := !w.running && !w.closed
	w.running = true
	w.st.mu.Unlock()
	if start {
		go w.drain()
	}
}

func (w *wsWriter) drain() {
	st, s, c := w.st, w.s, w.c
	for {
		st.mu.Lock()
		ops := st.ops
		st.ops = nil
		if len(ops) == 0 || w.closed {
			w.running = false
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
				if err := c.Write(w.ctx, typ, o.data); err != nil {
					c.CloseNow() // the reader sees it and ends the session
					end = true
				}
				st.sent(len(o.data))
			case opWSClose:
				c.Close(websocket.StatusCode(o.code), o.text)
				s.post(evWSClosed, st.id, o.code, o.text)
				end = true
			case opDone:
				// The app's task ended without a close: 1000, or 1011
				// after an exception (logged).
				code := websocket.StatusNormalClosure
				if o.hasText {
					s.logf("error: %s", strings.TrimRight(o.text, "\n"))
					code = websocket.StatusInternalError
				}
				c.Close(code, "")
				end = true
			}
			if end {
				st.mu.Lock()
				w.closed, w.running = true, false
				st.ops = nil
				st.mu.Unlock()
				return
			}
		}
	}
}

// readWS passes the client's messages to the app; it reports the close
// (the client's code, 1006 for a broken connection, 1007 for text that is
// not UTF-8, 1009 for a message over the limit).
func (s *Server) readWS(ctx context.Context, st *stream, c *websocket.Conn) {
	for {
		select {
		case <-st.want:
		case <-ctx.Done():
			return
		}
		typ, data, err := c.Read(ctx)
		if err != nil {
			code, reason := 1006, ""
			var ce websocket.CloseError
			switch {
			case errors.As(err, &ce):
				code, reason = int(ce.Code), ce.Reason
			case strings.Contains(err.Error(), "read limited"):
				code = int(websocket.StatusMessageTooBig) // coder/websocket has closed with it
			}
			if ctx.Err() == nil {
				s.post(evWSClosed, st.id, code, reason)
			}
			return
		}
		text := typ == websocket.MessageText
		if text && !utf8.Valid(data) {
			// The library does not check (RFC 6455 8.1): close with 1007.
			c.Close(websocket.StatusInvalidFramePayloadData, "invalid UTF-8 in a text message")
			s.post(evWSClosed, st.id, 1007, "invalid UTF-8 in a text message")
			return
		}
		s.post(evWSMsg, st.id, text, data)
	}
}
