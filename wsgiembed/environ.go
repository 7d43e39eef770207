package wsgiembed

import (
	"net/http"

	"github.com/hornbeam-go/hornbeam/internal/httpwsgi"
	"github.com/hornbeam-go/hornbeam/proxy"
	"github.com/hornbeam-go/hornbeam/pymarshal"
)

// appendEnviron writes the request's WSGI environ (PEP 3333) as marshal
// data, key for key what the process mode sends (wsgi/environ.go; the values
// come from internal/httpwsgi), in the shape hornbeam._embed.App.handle takes:
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
	e.Latin1Str(httpwsgi.ServerProtocol(r))
	e.Latin1Str(proxy.Scheme(r))
	host, port := httpwsgi.ServerAddr(r)
	e.Latin1Str(host)
	e.Latin1Str(port)
	raddr, rport := httpwsgi.SplitHostPort(r.RemoteAddr)
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
	httpwsgi.AppendHeaderKeys(e, r, bodyLen)
	e.EndDict()
}
