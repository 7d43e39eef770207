package httpwsgi

import (
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/hornbeam-go/hornbeam/pymarshal"
)

// The environ (PEP 3333) both modes build from a request. Strings are
// "native strings": the request's bytes as latin-1 code points. The two
// modes marshal it in different shapes (wsgi/environ.go,
// wsgiembed/environ.go); the values come from here.

// ServerProtocol is SERVER_PROTOCOL: "HTTP/2" for HTTP/2, else r.Proto.
func ServerProtocol(r *http.Request) string {
	if r.ProtoMajor == 2 {
		return "HTTP/2"
	}
	return r.Proto
}

// ServerAddr is SERVER_NAME and SERVER_PORT: from the Host header, the
// port from the local address when the header has none, the name
// "localhost" when there is none.
func ServerAddr(r *http.Request) (host, port string) {
	host, port = SplitHostPort(r.Host)
	if port == "" {
		if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			_, port = SplitHostPort(la.String())
		}
	}
	if host == "" {
		host = "localhost"
	}
	return host, port
}

// SplitHostPort splits "host:port", "[v6]:port" or a bare host.
func SplitHostPort(s string) (host, port string) {
	if h, p, err := net.SplitHostPort(s); err == nil {
		return h, p
	}
	return strings.Trim(s, "[]"), ""
}

// AppendHeaderKeys writes, into the marshal dict e is in, the keys that
// come from the request's headers: HTTP_HOST, CONTENT_TYPE, CONTENT_LENGTH
// (bodyLen, the body's length however it travels; none when -1: no body)
// and HTTP_* for the others. A name with an underscore is dropped, as
// gunicorn does; repeated fields are joined with "," ("; " for Cookie).
func AppendHeaderKeys(e *pymarshal.Encoder, r *http.Request, bodyLen int64) {
	kv := func(k, v string) {
		e.Latin1Str(k)
		e.Latin1Str(v)
	}
	if r.Host != "" {
		kv("HTTP_HOST", r.Host)
	}
	if ct := r.Header["Content-Type"]; len(ct) > 0 {
		kv("CONTENT_TYPE", ct[0])
	}
	if bodyLen >= 0 {
		kv("CONTENT_LENGTH", strconv.FormatInt(bodyLen, 10))
	}
	var name []byte
	for k, vs := range r.Header {
		if k == "Content-Type" || k == "Content-Length" || k == "Host" {
			continue
		}
		if strings.IndexByte(k, '_') >= 0 {
			// X-Forwarded_For must not be read as X-Forwarded-For: drop
			// such names, as gunicorn does.
			continue
		}
		name = append(name[:0], "HTTP_"...)
		for i := 0; i < len(k); i++ {
			c := k[i]
			switch {
			case c == '-':
				c = '_'
			case 'a' <= c && c <= 'z':
				c -= 'a' - 'A'
			}
			name = append(name, c)
		}
		e.Latin1Str(string(name))
		if len(vs) == 1 {
			e.Latin1Str(vs[0])
		} else if k == "Cookie" {
			e.Latin1Str(strings.Join(vs, "; ")) // HTTP/2 splits cookies (RFC 9113 8.2.3)
		} else {
			e.Latin1Str(strings.Join(vs, ","))
		}
	}
}
