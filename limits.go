package hornbeam

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/hornbeam-go/hornbeam/httpguard"
)

// limits rejects requests over the request-line and header limits, and
// HTTP/1.x requests whose framing or target is faulty, before any worker
// sees them. The connection is closed after the error. It runs first, on
// the request as the client sent it.
type limits struct {
	opts *Options
	next http.Handler
}

func (l *limits) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reject := func(code int, msg string) {
		w.Header().Set("Connection", "close")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(code)
		fmt.Fprintln(w, msg)
	}
	if r.ProtoMajor == 1 {
		// First, for every HTTP/1.x request: the guard's verdicts come in
		// the connection's request order (httpguard.Check).
		switch v := httpguard.Check(r); {
		case v.Reject != "":
			reject(http.StatusBadRequest, "Bad Request: "+v.Reject)
			return
		case v.Close:
			w.Header().Set("Connection", "close")
		}
	}
	if n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 2; n > l.opts.LimitRequestLine {
		reject(http.StatusRequestURITooLong, fmt.Sprintf("URI Too Long: the request line is %d bytes, the limit is %d (--limit-request-line)", n, l.opts.LimitRequestLine))
		return
	}
	if r.ProtoMajor == 1 {
		// HTTP/2 checks its :path itself.
		if msg := targetError(r.Method, r.RequestURI); msg != "" {
			reject(http.StatusBadRequest, "Bad Request: "+msg)
			return
		}
	}
	// net/http moves Host and Transfer-Encoding out of r.Header: count
	// them too, as the client sent them.
	fields := 0
	check := func(name string, n int) bool {
		fields++
		if size := len(name) + 2 + n; size > l.opts.LimitRequestFieldSize {
			reject(http.StatusRequestHeaderFieldsTooLarge, fmt.Sprintf("Request Header Fields Too Large: the %s field is %d bytes, the limit is %d (--limit-request-field-size)", name, size, l.opts.LimitRequestFieldSize))
			return false
		}
		return true
	}
	if r.ProtoMajor == 1 && r.Host != "" && !check("Host", len(r.Host)) {
		return
	}
	for _, te := range r.TransferEncoding {
		if !check("Transfer-Encoding", len(te)) {
			return
		}
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			if !check(k, len(v)) {
				return
			}
		}
	}
	if fields > l.opts.LimitRequestFields {
		reject(http.StatusRequestHeaderFieldsTooLarge, fmt.Sprintf("Request Header Fields Too Large: %d fields, the limit is %d (--limit-request-fields)", fields, l.opts.LimitRequestFields))
		return
	}
	if r.ProtoMajor == 1 && len(r.TransferEncoding) > 0 {
		// net/http drops a Content-Length sent beside Transfer-Encoding, so
		// such a request cannot be told apart; RFC 9112 section 6.1 says to
		// close the connection after it. Closing after every chunked
		// request means no request smuggled in its body is ever read.
		w.Header().Set("Connection", "close")
	}
	l.next.ServeHTTP(w, r)
}

// targetError says why an HTTP/1.x request target (as sent) is not
// acceptable, or returns "". RFC 9112 section 3.2: origin-form
// ("/path?query") for any method; absolute-form for any method, but only
// an http or https URI with a valid authority and no userinfo (RFC 9110
// 4.2); authority-form ("host:port") for CONNECT only, which takes nothing
// else; asterisk-form ("*") for OPTIONS only. A fragment ("#") is never
// sent. net/http has already refused targets it cannot parse at all.
func targetError(method, target string) string {
	if strings.IndexByte(target, '#') >= 0 {
		return "a fragment (#) is not allowed in the request target (RFC 9112 section 3.2)"
	}
	if method == "CONNECT" {
		if !validAuthority(target, true) {
			return "CONNECT takes host:port as its target (RFC 9112 section 3.2.3)"
		}
		return ""
	}
	switch {
	case strings.HasPrefix(target, "/"):
		return ""
	case target == "*":
		if method != "OPTIONS" {
			return "the target * is for OPTIONS only (RFC 9112 section 3.2.4)"
		}
		return ""
	}
	scheme, rest, ok := strings.Cut(target, "://")
	if !ok || (!strings.EqualFold(scheme, "http") && !strings.EqualFold(scheme, "https")) {
		return "the target must be a path, or an absolute http or https URI (RFC 9112 section 3.2)"
	}
	authority := rest
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority = rest[:i]
	}
	if !validAuthority(authority, false) {
		return "the absolute URI has no valid host[:port] authority (RFC 9112 section 3.2.2)"
	}
	return ""
}

// validAuthority reports whether s is host[:port] (host:port when
// needPort): a registered name, an IPv4 address or a bracketed IPv6
// address (RFC 3986 3.2.2), and a decimal port. Userinfo ("user@") is
// refused (RFC 9110 4.2.4), as are empty hosts and ports.
func validAuthority(s string, needPort bool) bool {
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return false
		}
		host, port = s[:end+1], s[end+1:]
		if port != "" {
			if port[0] != ':' {
				return false
			}
			port = port[1:]
			if port == "" {
				return false
			}
		}
		addr, err := netip.ParseAddr(host[1 : len(host)-1])
		if err != nil || !addr.Is6() || addr.Zone() != "" {
			return false
		}
	} else {
		if i := strings.LastIndexByte(s, ':'); i >= 0 {
			host, port = s[:i], s[i+1:]
			if port == "" {
				return false
			}
		}
		if host == "" || !regName(host) {
			return false
		}
	}
	if port == "" {
		return !needPort
	}
	for i := 0; i < len(port); i++ {
		if port[i] < '0' || port[i] > '9' {
			return false
		}
	}
	return true
}

// regName reports whether s is an RFC 3986 reg-name (an IPv4 address is
// one too): unreserved characters, sub-delimiters and %-escapes.
func regName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-._~!$&'()*+,;=", c) >= 0:
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			i += 2
		default:
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
