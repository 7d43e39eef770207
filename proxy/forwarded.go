package proxy

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// Handler returns next wrapped so that requests from trusted proxies carry
// the client's address and scheme (and, with ForwardedHost, host).
//
// The trust check is made on the immediate peer: r.RemoteAddr, or, when
// http.Server.ConnContext is ConnContext and the connection came through
// Listener, the socket peer that sent the PROXY header. From an untrusted
// peer the request goes through unchanged, headers included. (So with
// Listener the headers are believed from a trusted balancer although
// r.RemoteAddr is the client its PROXY header named: right for an HTTP
// proxy that also sends PROXY headers, but a layer-4 balancer passes the
// client's own headers through, and must not be trusted unless something
// in front of it sets or removes them.)
//
// From a trusted peer, one family of headers is read:
//
//   - If any X-Forwarded-For, X-Forwarded-Proto or X-Forwarded-Host header
//     is present, those, and Forwarded is ignored. Nearly every proxy and
//     load balancer sets X-Forwarded-* and passes a client's Forwarded
//     through untouched, so a client must not be able to override them
//     with a Forwarded header of its own.
//   - Otherwise the Forwarded header (RFC 7239), whose elements carry for=
//     (IPv4, "[IPv6]", either with ":port"; quoted or not), proto= and
//     host=.
//
// A proxy that sets Forwarded must therefore remove X-Forwarded-*, and one
// that sets X-Forwarded-* should remove Forwarded.
//
// The client address is found as nginx's realip module does with
// real_ip_recursive on: each proxy appends the address of its own peer, so
// the list is walked from the right, skipping addresses that are trusted
// proxies themselves; the first untrusted address is the client. What is
// left of it was written by the client (or an untrusted hop) and is never
// read. If every address is trusted, the left-most is taken (so with "*",
// which trusts every address, the left-most is the client: the client's
// own claim). An entry that is not an address ("unknown", an obfuscated
// "_hidden" node, garbage, a malformed Forwarded element) stops the walk:
// the client address is then the last address passed, or the peer's if
// none was.
//
// The scheme is the right-most X-Forwarded-Proto value ("http" or
// "https"), or the proto= of the Forwarded element chosen for the client:
// the element a trusted proxy wrote, which with one proxy is the
// right-most. The host is taken only when t.ForwardedHost is set: the
// right-most X-Forwarded-Host value, or the host= of that same Forwarded
// element. Otherwise r.Host, the request's own Host header, is kept.
//
// The results: r.RemoteAddr becomes "client-ip:port" (the port from
// Forwarded for= when given, else "0"), r.Host the forwarded host, and
// the forwarded scheme is stored for Scheme (WithScheme). Values that do
// not parse (other schemes, hosts with characters a host cannot have) are
// ignored, each on its own. The headers themselves are left for the
// application. The request is copied, not modified.
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
		f := t.forwardedFrom(r.Header)
		if t == nil || !t.ForwardedHost {
			f.host = ""
		}
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

// forwarded is what the trusted proxies told about the client.
type forwarded struct {
	remote string // "ip:port"
	scheme string // "http" or "https"
	host   string // whatever t.ForwardedHost says
}

// forwardedFrom reads the headers of a request from a trusted peer.
func (t *Trust) forwardedFrom(h http.Header) forwarded {
	if len(h["X-Forwarded-For"]) > 0 || len(h["X-Forwarded-Proto"]) > 0 || len(h["X-Forwarded-Host"]) > 0 {
		return t.fromXForwarded(h)
	}
	if vs := h["Forwarded"]; len(vs) > 0 {
		return t.fromForwarded(vs)
	}
	return forwarded{}
}

func (t *Trust) fromXForwarded(h http.Header) forwarded {
	var f forwarded
	addrs := listItems(h["X-Forwarded-For"])
	for i := len(addrs) - 1; i >= 0; i-- {
		ip, ok := parseAddr(addrs[i])
		if !ok {
			break
		}
		f.remote = net.JoinHostPort(ip.String(), "0")
		if !t.TrustedIP(ip) {
			break
		}
	}
	f.scheme = parseScheme(rightmost(h["X-Forwarded-Proto"]))
	if v := rightmost(h["X-Forwarded-Host"]); validHost(v) {
		f.host = v
	}
	return f
}

func (t *Trust) fromForwarded(vs []string) forwarded {
	var f forwarded
	var chosen map[string]string // the element describing the client
	elems := forwardedElements(vs)
	for i := len(elems) - 1; i >= 0; i-- {
		e := elems[i]
		if e == nil {
			break // malformed: nothing is known of this hop or those before
		}
		ip, port, ok := parseNode(e["for"])
		if !ok {
			// for= absent, "unknown", obfuscated or bad: the client is not
			// named, but a trusted proxy wrote the element.
			chosen = e
			break
		}
		f.remote = net.JoinHostPort(ip.String(), port)
		chosen = e
		if !t.TrustedIP(ip) {
			break
		}
	}
	if chosen != nil {
		f.scheme = parseScheme(chosen["proto"])
		if v, ok := chosen["host"]; ok && validHost(v) {
			f.host = v
		}
	}
	return f
}

// listItems returns the non-empty comma-separated items of a header's
// values, in order, spaces trimmed.
func listItems(vs []string) []string {
	var out []string
	for _, v := range vs {
		for _, item := range strings.Split(v, ",") {
			if item = strings.TrimSpace(item); item != "" {
				out = append(out, item)
			}
		}
	}
	return out
}

// rightmost returns the last non-empty comma-separated item of a header's
// values: the one the nearest proxy wrote.
func rightmost(vs []string) string {
	for i := len(vs) - 1; i >= 0; i-- {
		items := strings.Split(vs[i], ",")
		for j := len(items) - 1; j >= 0; j-- {
			if item := strings.TrimSpace(items[j]); item != "" {
				return item
			}
		}
	}
	return ""
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

// forwardedElements parses Forwarded header values (RFC 7239 section 4)
// into their elements, in order: each a map of parameter (lower case) to
// value, or nil for a malformed element. Elements are separated by ',',
// and each header line is parsed on its own, so a client's unterminated
// quote cannot swallow the element a proxy added as a line of its own.
// Empty elements are skipped. After a malformed element parsing resumes
// at the next ',' outside a quoted string.
func forwardedElements(vs []string) []map[string]string {
	var out []map[string]string
	for _, s := range vs {
		i := 0
		for i < len(s) {
			pairs, next, ok := parseElement(s, i)
			if !ok {
				pairs, next = nil, skipElement(s, next)
			}
			if !ok || len(pairs) > 0 {
				out = append(out, pairs)
			}
			i = next
		}
	}
	return out
}

// parseElement parses the element of s starting at i: pairs token=value
// separated by ';' (empty pairs allowed), value a token or a
// quoted-string. Parameter names are case-insensitive. It returns the
// pairs and the index just past the ',' that ends the element (or
// len(s)); ok is false, with next where the error was, for a malformed
// element or one repeating a parameter.
func parseElement(s string, i int) (pairs map[string]string, next int, ok bool) {
	pairs = make(map[string]string, 4)
	skipSpace := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
	}
	for {
		skipSpace()
		if i >= len(s) {
			return pairs, i, true
		}
		switch s[i] {
		case ',':
			return pairs, i + 1, true
		case ';':
			i++ // an empty pair
			continue
		}
		// a parameter name
		start := i
		for i < len(s) && isTokenChar(s[i]) {
			i++
		}
		name := strings.ToLower(s[start:i])
		if name == "" || i >= len(s) || s[i] != '=' {
			return nil, i, false
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
				return nil, len(s), false
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
			return nil, i, false
		}
		pairs[name] = value
		skipSpace()
		if i >= len(s) {
			return pairs, i, true
		}
		switch s[i] {
		case ',':
			return pairs, i + 1, true
		case ';':
			i++
		default:
			return nil, i, false
		}
	}
}

// skipElement returns the index just past the first ',' at or after i that
// is outside a quoted string, or len(s).
func skipElement(s string, i int) int {
	quoted := false
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == ',':
			return i + 1
		}
	}
	return len(s)
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
