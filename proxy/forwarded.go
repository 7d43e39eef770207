package proxy

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// Handler returns next wrapped so that requests from trusted proxies carry
// the client's address, scheme and host.
//
// The trust check is made on the immediate peer: r.RemoteAddr, or, when
// http.Server.ConnContext is ConnContext and the connection came through
// Listener, the socket peer that sent the PROXY header. From an untrusted
// peer the request goes through unchanged, headers included.
//
// From a trusted peer:
//
//   - If a Forwarded header (RFC 7239) is present and its first element
//     parses, it alone is used, and the X-Forwarded-* headers are ignored:
//     for= gives the client address (IPv4, "[IPv6]", either with ":port";
//     quoted or not), proto= the scheme, host= the host.
//   - Otherwise X-Forwarded-For (its left-most address), X-Forwarded-Proto
//     ("http" or "https") and X-Forwarded-Host are used.
//
// The left-most element is taken as the client: it is what the first
// proxy of the chain saw. This trusts the whole chain, so the proxy facing
// the clients must overwrite, not append to, the header it sets (nginx:
// proxy_set_header X-Forwarded-For $remote_addr, not
// $proxy_add_x_forwarded_for) and drop the one it does not set (nginx:
// proxy_set_header Forwarded ""); otherwise a client can choose its
// logged address.
//
// The results: r.RemoteAddr becomes "client-ip:port" (the port from
// Forwarded for= when given, else "0"), r.Host the forwarded host, and
// the forwarded scheme is stored for Scheme (WithScheme). Values that do
// not parse ("unknown", obfuscated "_hidden" nodes, bad addresses, other
// schemes, hosts with characters a host cannot have) are ignored, each
// on its own. The headers themselves are left for the application. The
// request is copied, not modified.
func (t *Trust) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, _ := r.Context().Value(peerKey).(string)
		if peer == "" {
			peer = r.RemoteAddr
		}
		if !t.Trusted(peer) {
			next.ServeHTTP(w, r)
			return
		}
		f := forwardedFrom(r.Header)
		if f.remote == "" && f.scheme == "" && f.host == "" {
			next.ServeHTTP(w, r)
			return
		}
		ctx := r.Context()
		if f.scheme != "" {
			ctx = WithScheme(ctx, f.scheme)
		}
		r2 := r.WithContext(ctx)
		if f.remote != "" {
			r2.RemoteAddr = f.remote
		}
		if f.host != "" {
			r2.Host = f.host
		}
		next.ServeHTTP(w, r2)
	})
}

// forwarded is what a trusted proxy told about the client.
type forwarded struct {
	remote string // "ip:port"
	scheme string // "http" or "https"
	host   string
}

func forwardedFrom(h http.Header) forwarded {
	if vs := h["Forwarded"]; len(vs) > 0 {
		if pairs, ok := firstForwardedElement(strings.Join(vs, ",")); ok {
			var f forwarded
			if v, ok := pairs["for"]; ok {
				if ip, port, ok := parseNode(v); ok {
					f.remote = net.JoinHostPort(ip.String(), port)
				}
			}
			if v, ok := pairs["proto"]; ok {
				f.scheme = parseScheme(v)
			}
			if v, ok := pairs["host"]; ok && validHost(v) {
				f.host = v
			}
			return f
		}
	}
	var f forwarded
	if v := leftmost(h["X-Forwarded-For"]); v != "" {
		if ip, ok := parseAddr(v); ok {
			f.remote = net.JoinHostPort(ip.String(), "0")
		}
	}
	f.scheme = parseScheme(leftmost(h["X-Forwarded-Proto"]))
	if v := leftmost(h["X-Forwarded-Host"]); validHost(v) {
		f.host = v
	}
	return f
}

// leftmost returns the first comma-separated item of a header's values.
func leftmost(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	v, _, _ := strings.Cut(vs[0], ",")
	return strings.TrimSpace(v)
}

func parseScheme(s string) string {
	switch strings.ToLower(s) {
	case "http":
		return "http"
	case "https":
		return "https"
	}
	return ""
}

// firstForwardedElement parses the first element of a Forwarded header
// value (RFC 7239 section 4): pairs token=value separated by ';', value a
// token or a quoted-string, elements separated by ','. Parameter names are
// case-insensitive. A malformed element, or one repeating a parameter,
// gives ok = false.
func firstForwardedElement(s string) (pairs map[string]string, ok bool) {
	pairs = make(map[string]string, 4)
	i := 0
	skipSpace := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
	}
	for {
		skipSpace()
		// a parameter name
		start := i
		for i < len(s) && isTokenChar(s[i]) {
			i++
		}
		name := strings.ToLower(s[start:i])
		if name == "" || i >= len(s) || s[i] != '=' {
			return nil, false
		}
		i++ // '='
		var value string
		if i < len(s) && s[i] == '"' {
			i++
			var b strings.Builder
			closed := false
			for i < len(s) {
				c := s[i]
				if c == '\\' && i+1 < len(s) {
					b.WriteByte(s[i+1])
					i += 2
					continue
				}
				if c == '"' {
					closed = true
					i++
					break
				}
				b.WriteByte(c)
				i++
			}
			if !closed {
				return nil, false
			}
			value = b.String()
		} else {
			start := i
			// a token; '[', ']' and ':' are let through so that an
			// unquoted IPv6 node from a lax proxy still parses.
			for i < len(s) && (isTokenChar(s[i]) || s[i] == '[' || s[i] == ']' || s[i] == ':') {
				i++
			}
			value = s[start:i]
		}
		if _, dup := pairs[name]; dup {
			return nil, false
		}
		pairs[name] = value
		skipSpace()
		if i >= len(s) || s[i] == ',' {
			return pairs, true
		}
		if s[i] != ';' {
			return nil, false
		}
		i++
	}
}

// isTokenChar reports whether c is a tchar (RFC 9110 section 5.6.2).
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// parseNode parses a Forwarded for= node: "192.0.2.43", "192.0.2.43:47011",
// "[2001:db8::17]", "[2001:db8::17]:4711". The port is "0" when absent
// or obfuscated ("_abc"). "unknown" and obfuscated nodes give ok = false.
func parseNode(s string) (ip netip.Addr, port string, ok bool) {
	var host, portStr string
	switch {
	case strings.HasPrefix(s, "["): // [IPv6] or [IPv6]:port
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return netip.Addr{}, "", false
		}
		host = s[1:end]
		if rest := s[end+1:]; rest != "" {
			if rest[0] != ':' || len(rest) == 1 {
				return netip.Addr{}, "", false
			}
			portStr = rest[1:]
		}
	case strings.Count(s, ":") == 1: // IPv4:port
		host, portStr, _ = strings.Cut(s, ":")
		if portStr == "" {
			return netip.Addr{}, "", false
		}
	default: // IPv4, or an unbracketed IPv6 from a lax proxy
		host = s
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, "", false
	}
	if strings.HasPrefix(s, "[") && !ip.Is6() {
		return netip.Addr{}, "", false // "[192.0.2.1]"
	}
	port = "0"
	if portStr != "" && portStr[0] != '_' { // "_abc": an obfuscated port, dropped
		n, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil || len(portStr) > 5 {
			return netip.Addr{}, "", false
		}
		port = strconv.FormatUint(n, 10)
	}
	return ip.WithZone("").Unmap(), port, true
}

// parseAddr parses an X-Forwarded-For address: an IP, possibly in
// brackets, possibly with a port (which is dropped).
func parseAddr(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().WithZone("").Unmap(), true
	}
	if ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
		return ip.WithZone("").Unmap(), true
	}
	return netip.Addr{}, false
}

// validHost reports whether s can be a Host header: a reg-name, IPv4 or
// "[IPv6]" host with an optional port; at most 255 bytes.
func validHost(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return false
		}
		if _, err := netip.ParseAddr(s[1:end]); err != nil {
			return false
		}
		host = ""
		if rest := s[end+1:]; rest != "" {
			if rest[0] != ':' {
				return false
			}
			port = rest[1:]
			if port == "" {
				return false
			}
		}
	} else if h, p, found := strings.Cut(s, ":"); found {
		host, port = h, p
		if host == "" || port == "" {
			return false
		}
	}
	for i := 0; i < len(port); i++ {
		if port[i] < '0' || port[i] > '9' {
			return false
		}
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-._~!$&'()*+=%", c) >= 0:
		default:
			return false
		}
	}
	return true
}
