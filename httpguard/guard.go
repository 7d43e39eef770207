// Package httpguard enforces the HTTP/1.x framing rules that net/http
// accepts silently, by parsing each connection's byte stream alongside it.
//
// net/http is lenient in two ways that matter for request smuggling behind
// a proxy that frames requests differently:
//
//   - It deletes Transfer-Encoding from HTTP/1.0 requests ("Issue 12785")
//     and frames them by Content-Length, so a handler cannot see that the
//     request was faulty. RFC 9112 section 6.1 says such a message must be
//     treated as having faulty framing and the connection closed.
//   - It trims whitespace after a chunk size ("5 \r\n"). The chunk size is
//     hex digits only (RFC 9112 section 7.1); whitespace may follow it only
//     before a ';' chunk extension ("5 ;ext=1", which net/http refuses
//     anyway).
//
// A Conn (from Listener, or TLSListener for HTTP/1.x over TLS) wraps each
// accepted connection. As net/http reads, it follows the requests exactly
// as net/http frames them (request line, header fields with obs-fold,
// Content-Length, chunked bodies with trailers, the CR/LF net/http skips
// after a POST), without copying or changing a byte. It costs about 2 ns
// per header byte and nothing per body byte (BenchmarkParser), and keeps
// one small record per request until the handler asks for it with Check:
//
//   - an HTTP/1.0 request with Transfer-Encoding gets Verdict.Reject: the
//     handler answers 400 and closes the connection; the request must not
//     reach the application.
//   - a chunked body whose framing breaks the rules is cut where it breaks,
//     before the end of the bad line: net/http's body read fails with an
//     error wrapping ErrChunked (answer 400), and nothing after it is read
//     as a request.
//   - when the guard cannot follow a request's header (a malformed one
//     net/http rejects anyway, an unknown version, an invalid
//     Content-Length) it stops inspecting, and that request gets
//     Verdict.Close: the connection is closed after its response. It fails
//     safe, never open.
//
// An HTTP/2 prior-knowledge preface ("PRI * HTTP/2.0") makes it step aside:
// HTTP/2 frames its own messages. Check ignores HTTP/2 requests.
//
// Over TLS the guard must sit above the *tls.Conn, which net/http wants to
// see itself (for ALPN, HTTP/2 and Request.TLS): TLSListener does the
// handshake first, then hands net/http the *tls.Conn for HTTP/2 and a
// guarded connection for HTTP/1.x. Handlers must not hijack a guarded
// connection: the guard would parse what follows as HTTP/1.x.
//
// A Conn also tells how the client's side of the connection ended, which a
// handler cannot see: when net/http cancels a request's context because a
// read found the connection at its end, ClientGone says whether that was a
// half-close (EOF: the client may still read the response, as with
// shutdown(SHUT_WR) or `nc -N`) or the client is gone (reset, or a write
// failed).
//
// Use it with http.Server:
//
//	srv := &http.Server{Handler: h, ConnContext: httpguard.ConnContext}
//	srv.Serve(httpguard.Listener(ln))
//	// or, for TLS: srv.Serve(httpguard.TLSListener(ln, config, timeout, nil))
//
// and in the handler, first thing:
//
//	switch v := httpguard.Check(r); {
//	case v.Reject != "":
//		// answer 400 with Connection: close
//	case v.Close:
//		w.Header().Set("Connection", "close")
//	}
package httpguard

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
)

// maxPending bounds the requests parsed but not yet checked. net/http reads
// only a few KiB ahead of the request it serves, so a real client never
// gets near it; past it the guard gives up (and the connection closes).
const maxPending = 1024

// Listener wraps ln, whose connections carry HTTP/1.x as the client sent
// it (plain TCP, or after a PROXY protocol header): each connection it
// accepts is a *Conn.
func Listener(ln net.Listener) net.Listener { return &listener{ln} }

type listener struct{ net.Listener }

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return NewConn(c), nil
}

// Conn is a connection whose reads are inspected. Its methods are those of
// the net.Conn it wraps, plus ReadFrom and CloseWrite, forwarded so that
// net/http still uses sendfile and half-closes before closing.
type Conn struct {
	net.Conn

	readMu sync.Mutex // serializes Read: the parser sees bytes in order
	p      parser
	err    error // the violation that ended the stream, returned by every later Read

	mu       sync.Mutex
	queue    []record // parsed requests not yet checked
	head     int
	gaveUp   string // why the parser gave up, if it did
	closeAll bool   // close after the next response whatever its record says
	peerErr  error  // how the client's side ended: io.EOF (half-close) or an error
	writeErr error  // the first failed write
}

// NewConn wraps c, whose bytes are HTTP/1.x as the client sent them.
// Concurrent reads are serialized (net/http makes none).
func NewConn(c net.Conn) *Conn { return &Conn{Conn: c} }

// NetConn returns the connection c wraps.
func (c *Conn) NetConn() net.Conn { return c.Conn }

// Read reads from the connection and inspects what it read. When the bytes
// break the chunked framing rules it returns those before the bad line and
// then, from the next call on, an error wrapping ErrChunked.
func (c *Conn) Read(b []byte) (int, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.Conn.Read(b)
	if err != nil {
		c.notePeer(err)
	}
	if n == 0 || c.p.st == sStopped {
		return n, err
	}
	k, verr := c.p.feed(b[:n])
	c.publish()
	if verr != nil {
		c.err = verr
		if k > 0 {
			return k, nil
		}
		return 0, verr
	}
	return n, err
}

// publish hands the records of the last feed to the checker.
func (c *Conn) publish() {
	stopped := c.p.st == sStopped
	if len(c.p.out) == 0 && !stopped {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.head > 0 && c.head >= len(c.queue)/2 {
		// Drop the checked records (a client pipelining ahead may never
		// let the queue run empty).
		n := copy(c.queue, c.queue[c.head:])
		c.queue, c.head = c.queue[:n], 0
	}
	c.queue = append(c.queue, c.p.out...)
	c.p.out = c.p.out[:0]
	if len(c.queue)-c.head > maxPending {
		c.p.stop("more than 1024 requests read ahead of the one served")
		stopped = true
		c.closeAll = true
	}
	if stopped && c.gaveUp == "" {
		c.gaveUp = c.p.gaveUp
	}
}

// notePeer records the first error that ended the client's side; a timeout
// (a deadline net/http or a handler set) ends nothing.
func (c *Conn) notePeer(err error) {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return
	}
	c.mu.Lock()
	if c.peerErr == nil {
		c.peerErr = err
	}
	c.mu.Unlock()
}

func (c *Conn) noteWrite(err error) {
	c.mu.Lock()
	if c.writeErr == nil {
		c.writeErr = err
	}
	c.mu.Unlock()
}

// Write writes to the connection, noting a failure for ClientGone.
func (c *Conn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err != nil {
		c.noteWrite(err)
	}
	return n, err
}

// ReadFrom copies r to the connection with the wrapped connection's
// ReadFrom when it has one (sendfile on TCP).
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	var n int64
	var err error
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(writerOnly{c.Conn}, r)
	}
	if err != nil {
		c.noteWrite(err)
	}
	return n, err
}

type writerOnly struct{ io.Writer }

// CloseWrite shuts down the sending side, if the wrapped connection can.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return &net.OpError{Op: "close", Net: "guard", Err: errors.ErrUnsupported}
}

// Verdict is what Check says about a request.
type Verdict struct {
	// Reject, when not empty, says why the request's framing is faulty:
	// answer 400 and close the connection without serving it.
	Reject string
	// Close asks to close the connection after the response: the guard
	// could not follow the stream up to this request, or a faulty request
	// was answered by net/http itself (OPTIONS *).
	Close bool
}

type connKey struct{}

// ConnContext is for http.Server.ConnContext: it makes the connection's
// *Conn available to FromContext, Check and ClientGone.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	switch c := c.(type) {
	case *Conn:
		return context.WithValue(ctx, connKey{}, c)
	case *tlsHTTP1:
		return context.WithValue(ctx, connKey{}, c.Conn)
	}
	return ctx
}

// FromContext returns the *Conn of a request's context, or nil.
func FromContext(ctx context.Context) *Conn {
	c, _ := ctx.Value(connKey{}).(*Conn)
	return c
}

// Beneath returns the connection under the guard of c, a connection from
// Listener or TLSListener (a *tls.Conn for HTTP/1.x over TLS); other
// connections are returned as they are. It is for code that looks for its
// own connection type, such as a PROXY-protocol ConnContext.
func Beneath(c net.Conn) net.Conn {
	switch c := c.(type) {
	case *Conn:
		return c.Conn
	case *tlsHTTP1:
		return c.tls
	}
	return c
}

// Check returns the verdict on r. It must be called exactly once for every
// HTTP/1.x request a handler receives on the connection, in order (as the
// outermost handler does): each call takes the next request's record. It
// returns the zero Verdict for HTTP/2 requests and for connections without
// a guard. It counts on net/http answering OPTIONS * itself
// (http.Server.DisableGeneralOptionsHandler false): such requests are
// skipped.
func Check(r *http.Request) Verdict {
	c := FromContext(r.Context())
	if c == nil || r.ProtoMajor != 1 {
		return Verdict{}
	}
	return c.check(r.Method, r.ProtoMinor)
}

func (c *Conn) check(method string, minor int) Verdict {
	c.mu.Lock()
	defer c.mu.Unlock()
	var rec *record
	for c.head < len(c.queue) {
		r := &c.queue[c.head]
		c.head++
		// net/http answers OPTIONS * itself: its handler never sees it.
		if r.star && r.methodLen == len("OPTIONS") && string(r.method[:7]) == "OPTIONS" {
			if r.te10 {
				c.closeAll = true
			}
			continue
		}
		rec = r
		break
	}
	switch {
	case rec == nil:
		// The guard stopped before this request: it cannot vouch for it.
		return Verdict{Close: true}
	case !rec.is(method, minor):
		// Not the request the guard parsed: it lost track of the stream.
		c.closeAll = true
		if c.gaveUp == "" {
			c.gaveUp = "lost track of the requests"
		}
		return Verdict{Close: true}
	case rec.te10:
		return Verdict{Reject: "Transfer-Encoding in an HTTP/1.0 request (RFC 9112 section 6.1: faulty framing)"}
	}
	// The requests before the one the guard gave up on were followed to
	// their end: they need no special treatment.
	return Verdict{Close: c.closeAll || rec.close}
}

// GaveUp returns why the guard stopped inspecting the connection, or "" if
// it did not (or stepped aside for HTTP/2).
func (c *Conn) GaveUp() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gaveUp
}

// ClientGone reports whether the client of an HTTP/1.x request whose
// context has ended is certainly gone: a write to it failed, or its side of
// the connection ended with an error (a reset) rather than an EOF. An EOF
// may be a half-close: the client stopped sending but still reads. Requests
// without a guard are taken as gone.
func ClientGone(r *http.Request) bool {
	c := FromContext(r.Context())
	if c == nil {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writeErr != nil || (c.peerErr != nil && !errors.Is(c.peerErr, io.EOF))
}

// Detach returns the context to serve an HTTP/1.x request under: unlike
// r.Context(), it does not end when the client half-closes (stops sending
// but still reads, like `nc -N`), only when ClientGone says the client is
// gone once r.Context() has ended. An HTTP/2 request's own context is
// returned as is. Call cancel when the request is done.
func Detach(r *http.Request) (ctx context.Context, cancel context.CancelFunc) {
	if r.ProtoMajor != 1 {
		return context.WithCancel(r.Context())
	}
	ctx, cancelCause := context.WithCancelCause(context.WithoutCancel(r.Context()))
	stop := context.AfterFunc(r.Context(), func() {
		if ClientGone(r) {
			cancelCause(ErrClientGone)
		}
	})
	return ctx, func() {
		stop()
		cancelCause(nil)
	}
}

// ErrClientGone is the cause of a Detach context ended because its client
// is gone.
var ErrClientGone = errors.New("the client is gone")
