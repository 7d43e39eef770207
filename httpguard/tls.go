package httpguard

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"sync"
	"time"
)

// TLSListener returns a listener for an http.Server serving TLS that
// inspects HTTP/1.x over TLS too. It does each connection's TLS handshake
// itself (in a goroutine of its own, within timeout; 0: none), before
// Accept returns the connection:
//
//   - HTTP/2 (or any protocol ALPN chose but HTTP/1.x) comes as the
//     *tls.Conn, which net/http serves as it would have;
//   - HTTP/1.x comes as a *Conn in guarded connection over the *tls.Conn, with a
//     ConnectionState method so that net/http still sets Request.TLS.
//
// Use it in place of tls.NewListener, with a config whose NextProtos lists
// "h2" (net/http's Serve cannot add it to a config it is not given). A
// failed handshake is logged to errorLog as net/http logs it ("http: TLS
// handshake error from ADDR: ...", nil: the log package's logger), and a
// client speaking plain HTTP gets net/http's 400.
func TLSListener(ln net.Listener, config *tls.Config, timeout time.Duration, errorLog *log.Logger) net.Listener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &tlsListener{
		Listener: ln, config: config, timeout: timeout, errorLog: errorLog,
		ctx: ctx, cancel: cancel, ready: make(chan net.Conn), failed: make(chan struct{}),
	}
	go l.acceptLoop()
	return l
}

type tlsListener struct {
	net.Listener
	config   *tls.Config
	timeout  time.Duration
	errorLog *log.Logger

	ctx    context.Context // ends at Close: handshakes in progress stop
	cancel context.CancelFunc
	ready  chan net.Conn // handshaken connections for Accept
	failed chan struct{} // closed when the raw listener failed for good
	err    error         // why, set before failed is closed
	once   sync.Once
}

func (l *tlsListener) logf(format string, args ...any) {
	if l.errorLog != nil {
		l.errorLog.Printf(format, args...)
	} else {
		log.Printf(format, args...)
	}
}

// acceptLoop accepts raw connections and starts their handshakes. Like
// http.Server.Serve, it retries temporary errors with a growing pause.
func (l *tlsListener) acceptLoop() {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			var ne net.Error
			//lint:ignore SA1019 what http.Server.Serve checks too
			if errors.As(err, &ne) && ne.Temporary() && l.ctx.Err() == nil { //nolint:staticcheck
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				l.logf("http: Accept error: %v; retrying in %v", err, delay)
				select {
				case <-time.After(delay):
					continue
				case <-l.ctx.Done():
				}
			}
			l.err = err
			close(l.failed)
			return
		}
		delay = 0
		go l.handshake(c)
	}
}

// handshake runs the TLS handshake of c and hands the connection to Accept.
func (l *tlsListener) handshake(c net.Conn) {
	tc := tls.Server(c, l.config)
	ctx := l.ctx
	if l.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.timeout)
		defer cancel()
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		// As http.Server does: a plain HTTP request gets an answer.
		reason := err.Error()
		var re tls.RecordHeaderError
		if errors.As(err, &re) && re.Conn != nil && recordLooksLikeHTTP(re.RecordHeader) {
			io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
			reason = "client sent an HTTP request to an HTTPS server"
		}
		l.logf("http: TLS handshake error from %s: %v", c.RemoteAddr(), reason)
		c.Close()
		return
	}
	var out net.Conn = tc
	switch tc.ConnectionState().NegotiatedProtocol {
	case "", "http/1.1", "http/1.0":
		out = &tlsHTTP1{Conn: NewConn(tc), tls: tc}
	}
	select {
	case l.ready <- out:
	case <-l.ctx.Done():
		out.Close()
	}
}

// recordLooksLikeHTTP is http.Server's test of a TLS record header that is
// the start of an HTTP request.
func recordLooksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

// Accept returns the next connection whose handshake succeeded.
func (l *tlsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.ctx.Done():
		return nil, net.ErrClosed
	case <-l.failed:
		return nil, l.err
	}
}

// Close stops accepting, ends the handshakes in progress and closes the
// connections not yet accepted.
func (l *tlsListener) Close() error {
	var err error
	l.once.Do(func() {
		l.cancel()
		err = l.Listener.Close()
	})
	return err
}

// tlsHTTP1 is an HTTP/1.x connection over TLS. net/http sets Request.TLS
// from its ConnectionState.
type tlsHTTP1 struct {
	*Conn
	tls *tls.Conn
}

// ConnectionState is the TLS connection's.
func (c *tlsHTTP1) ConnectionState() tls.ConnectionState { return c.tls.ConnectionState() }
