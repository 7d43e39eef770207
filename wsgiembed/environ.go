package wsgiembed

import (
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/hornbeam-go/hornbeam/proxy"
	"github.com/hornbeam-go/hornbeam/pymarshal"
)

// appendEnviron writes the request's WSGI environ (PEP 3333) as marshal
// data, key for key what the process mode sends (wsgi/environ.go: keep the
// two the same), in the shape hornbeam._embed.App.handle takes:
//
//	((REQUEST_METHOD, PATH_INFO, QUERY_STRING, REQUEST_URI, SERVER_PROTOCOL,
//	  wsgi.url_scheme, SERVER_NAME, SERVER_PORT, REMOTE_ADDR, REMOTE_PORT),
//	 BODY, {other keys: HTTP_HOST, CONTENT_TYPE, CONTENT_LENGTH, HTTP_*})
//
// RAW_URI is REQUEST_URI; SCRIPT_NAME and the wsgi.* keys are Python's.
// Strings are "native strings": the request's bytes as latin-1 code points.
// BODY is the bytes when body is not nil, else the descriptor fd of its
// spooled file when fd >= 0, else None; bodyLen is its length however it
// travels (-1: no body).
func appendEnviron(e *pymarshal.Encoder, r *http.Request, body []byte, fd int, bodyLen int64) {
	e.Reset()
	e.BeginTuple(3)
	e.BeginTuple(10)
	e.Latin1Str(r.Method)
	e.Latin1Str(r.URL.Path)
	e.Latin1Str(r.URL.RawQuery)
	e.Latin1Str(r.RequestURI)
	switch r.ProtoMajor {
	case 2:
		e.Latin1Str("HTTP/2")
	default:
		e.Latin1Str(r.Proto)
	}
	e.Latin1Str(proxy.Scheme(r))
	host, port := splitHostPort(r.Host)
	if port == "" {
		if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			_, port = splitHostPort(la.String())
		}
	}
	if host == "" {
		host = "localhost"
	}
	e.Latin1Str(host)
	e.Latin1Str(port)
	raddr, rport := splitHostPort(r.RemoteAddr)
	e.Latin1Str(raddr)
	e.Latin1Str(rport)

	switch {
	case body != nil:
		e.Bytes(body)
	case fd >= 0:
		e.Int(int64(fd))
	default:
		e.None()
	}

	e.BeginDict()
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
	e.EndDict()
}

// splitHostPort splits "host:port", "[v6]:port" or a bare host.
func splitHostPort(s string) (host, port string) {
	if h, p, err := net.SplitHostPort(s); err == nil {
		return h, p
	}
	return strings.Trim(s, "[]"), ""
}
