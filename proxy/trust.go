// Package proxy lets hornbeam run behind a reverse proxy or a load
// balancer: it recovers the client's address and scheme (and, if asked,
// host) from the Forwarded / X-Forwarded-* headers (Trust.Handler) or from
// a PROXY protocol header (Listener), believing them only from trusted
// peers.
//
// Every proxy in front appends the address of its own peer, so the client
// is the right-most address of X-Forwarded-For (or Forwarded for=) that is
// not itself a trusted proxy, as with nginx's realip module and
// real_ip_recursive on; what a client writes to the left of it is never
// believed. The host is taken from a forwarding header only when
// Trust.ForwardedHost is set. See Trust.Handler for the whole rule.
//
// Wiring, outermost first:
//
//	ln = proxy.Listener(ln, trust, readHeaderTimeout)   // --proxy-protocol (before tls.NewListener)
//	srv.ConnContext = proxy.ConnContext                // with --proxy-protocol: trust is checked against the socket peer
//	handler = trust.Handler(handler)                   // --forwarded-allow-ips, --forwarded-host
//
// and the WSGI environ takes wsgi.url_scheme from proxy.Scheme(r).
package proxy

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// DefaultAllow is the default list of trusted proxies, as gunicorn's
// --forwarded-allow-ips.
var DefaultAllow = []string{"127.0.0.1", "::1"}

// Trust is a set of trusted proxy addresses. A nil *Trust trusts only
// unix-socket peers.
type Trust struct {
	// ForwardedHost lets Handler take the host from a trusted proxy's
	// Forwarded host= or X-Forwarded-Host (--forwarded-host). Off, the
	// request's own Host header is kept: set it only when the proxy sets
	// or removes the header hornbeam reads. Set it before Handler serves.
	ForwardedHost bool

	all      bool
	prefixes []netip.Prefix
}

// NewTrust parses a list of trusted proxies: IP addresses ("127.0.0.1",
// "::1"), CIDR ranges ("10.0.0.0/8", "fd00::/8") or "*" for every peer
// (then every address in a forwarding header is trusted too, so the
// left-most one, which the client wrote, is taken as the client).
// An entry may itself be a comma-separated list (gunicorn's
// "127.0.0.1,::1" form); spaces and empty entries are ignored.
// IPv4-mapped IPv6 peers (::ffff:10.1.2.3) match IPv4 entries.
// Unix-socket peers are always trusted, as in gunicorn.
func NewTrust(allow []string) (*Trust, error) {
	t := &Trust{}
	for _, entry := range allow {
		for _, s := range strings.Split(entry, ",") {
			s = strings.TrimSpace(s)
			switch {
			case s == "":
				continue
			case s == "*":
				t.all = true
			case strings.Contains(s, "/"):
				p, err := netip.ParsePrefix(s)
				if err != nil {
					return nil, fmt.Errorf("trusted proxy %q: not an IP address or CIDR range (like 10.0.0.0/8)", s)
				}
				if p.Addr().Is4In6() && p.Bits() >= 96 {
					p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
				}
				t.prefixes = append(t.prefixes, p.Masked())
			default:
				a, err := netip.ParseAddr(s)
				if err != nil {
					return nil, fmt.Errorf("trusted proxy %q: not an IP address or CIDR range (like 10.0.0.0/8)", s)
				}
				a = a.WithZone("").Unmap()
				t.prefixes = append(t.prefixes, netip.PrefixFrom(a, a.BitLen()))
			}
		}
	}
	return t, nil
}

// TrustedIP reports whether ip is a trusted proxy: Handler uses it both on
// the peer and on the addresses of a forwarding header.
func (t *Trust) TrustedIP(ip netip.Addr) bool {
	if t == nil || !ip.IsValid() {
		return false
	}
	if t.all {
		return true
	}
	ip = ip.WithZone("").Unmap()
	for _, p := range t.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Trusted reports whether a peer, given as an http.Request's RemoteAddr
// ("1.2.3.4:5678", "[::1]:5678"), is a trusted proxy. A unix-socket peer
// (RemoteAddr "", "@" or a socket path) is trusted.
func (t *Trust) Trusted(remoteAddr string) bool {
	if isUnixPeer(remoteAddr) {
		return true
	}
	if ap, err := netip.ParseAddrPort(remoteAddr); err == nil {
		return t.TrustedIP(ap.Addr())
	}
	if a, err := netip.ParseAddr(strings.Trim(remoteAddr, "[]")); err == nil {
		return t.TrustedIP(a)
	}
	return false
}

func (t *Trust) trustedNetAddr(a net.Addr) bool {
	switch a := a.(type) {
	case *net.UnixAddr:
		return true
	case *net.TCPAddr:
		ip, ok := netip.AddrFromSlice(a.IP)
		return ok && t.TrustedIP(ip)
	case nil:
		return false
	}
	return t.Trusted(a.String())
}

func isUnixPeer(remoteAddr string) bool {
	return remoteAddr == "" || remoteAddr[0] == '@' || remoteAddr[0] == '/'
}

type ctxKey int

const (
	schemeKey ctxKey = iota
	peerKey
)

// WithScheme returns ctx noting that the client used scheme ("http" or
// "https"); Scheme reads it back. Trust.Handler calls it when a trusted
// proxy forwarded the protocol.
func WithScheme(ctx context.Context, scheme string) context.Context {
	return context.WithValue(ctx, schemeKey, scheme)
}

// Scheme returns the scheme the client used, "https" or "http": the one a
// trusted proxy forwarded (see Trust.Handler) if any, else "https" when
// the request came over TLS and "http" otherwise. A forwarded scheme wins
// over r.TLS: behind a proxy that terminates the client's TLS and then
// re-encrypts, or that talks plain HTTP to clients over a TLS hop, what
// the app needs is what the client used.
//
// The WSGI layer should use it for wsgi.url_scheme.
func Scheme(r *http.Request) string {
	if s, ok := r.Context().Value(schemeKey).(string); ok && (s == "http" || s == "https") {
		return s
	}
	if r.TLS != nil {
		return "https"
	}
	return "http"
}
