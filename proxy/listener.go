package proxy

import (
	"context"
	"crypto/tls"
	"net"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// DefaultHeaderTimeout is how long Listener waits for a PROXY header when
// its timeout argument is 0.
const DefaultHeaderTimeout = 10 * time.Second

// Listener wraps ln so that connections may start with a PROXY protocol
// header (HAProxy's, version 1 text or version 2 binary); then the
// connection's RemoteAddr, and so r.RemoteAddr, is the client address the
// header gives. A v2 LOCAL header (a proxy's health check) keeps the real
// peer address.
//
// Policy (go-proxyproto's):
//
//   - a trusted peer (trust; unix-socket peers always): USE. The header is
//     optional, so health checks and direct clients on trusted addresses
//     still get through without one, as in gunicorn's --proxy-protocol.
//   - any other peer: REJECT. A connection that starts with a PROXY header
//     is refused (the first read fails; net/http answers 400 and closes),
//     so a client cannot choose its address and a misconfigured trust list
//     shows at once; connections without a header are served normally.
//
// timeout bounds the wait for the header's bytes on each connection (0:
// DefaultHeaderTimeout; negative: no bound); past it the connection is
// taken to have no header. The header is read by the connection's own
// goroutine (on its first Read or RemoteAddr), never in Accept.
//
// Wrap the plain listener, before tls.NewListener: the PROXY header comes
// before the TLS handshake. Sendfile still works: the wrapped connection
// forwards ReadFrom to the *net.TCPConn.
func Listener(ln net.Listener, trust *Trust, timeout time.Duration) net.Listener {
	if timeout == 0 {
		timeout = DefaultHeaderTimeout
	}
	if timeout < 0 {
		timeout = -1
	}
	return &proxyproto.Listener{
		Listener: ln,
		ConnPolicy: func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
			// Never return an error: go-proxyproto's Accept would hand it
			// to http.Server.Serve, which would stop serving.
			if trust.trustedNetAddr(o.Upstream) {
				return proxyproto.USE, nil
			}
			return proxyproto.REJECT, nil
		},
		ReadHeaderTimeout: timeout,
	}
}

// ConnContext is for http.Server.ConnContext when listeners are wrapped by
// Listener: it notes the socket peer of a PROXY-protocol connection (the
// proxy itself) so that Trust.Handler checks the proxy, not the client
// address the PROXY header gave, against the trusted list (gunicorn
// checks the socket peer too). It never blocks: it does not read the
// PROXY header. Other connections are left alone.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if pc, ok := c.(*proxyproto.Conn); ok {
		if a := pc.Raw().RemoteAddr(); a != nil {
			s := a.String()
			if _, unix := a.(*net.UnixAddr); unix {
				s = "@" // isUnixPeer
			}
			return context.WithValue(ctx, peerKey, s)
		}
	}
	return ctx
}
