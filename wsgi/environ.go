package wsgi

import (
	"net/http"

	"github.com/hornbeam-go/hornbeam/internal/httpwsgi"
	"github.com/hornbeam-go/hornbeam/proxy"
	"github.com/hornbeam-go/hornbeam/pymarshal"
)

// appendEnviron writes the request's WSGI environ (PEP 3333) as a marshal
// dict. Strings are "native strings": the request's bytes as latin-1 code
// points. body, when not nil, is the whole request body, sent inline under
// "hornbeam.body"; bodyLen is its length however it travels (-1: no body).
// The values are the embedded mode's too (internal/httpwsgi).
func appendEnviron(e *pymarshal.Encoder, r *http.Request, body []byte, bodyLen int64) {
	e.Reset()
	e.BeginDict()
	kv := func(k, v string) {
		e.Latin1Str(k)
		e.Latin1Str(v)
	}
	kv("REQUEST_METHOD", r.Method)
	kv("SCRIPT_NAME", "")
	kv("PATH_INFO", r.URL.Path)
	kv("QUERY_STRING", r.URL.RawQuery)
	kv("RAW_URI", r.RequestURI)
	kv("REQUEST_URI", r.RequestURI)
	kv("SERVER_PROTOCOL", httpwsgi.ServerProtocol(r))
	kv("wsgi.url_scheme", proxy.Scheme(r))
	host, port := httpwsgi.ServerAddr(r)
	kv("SERVER_NAME", host)
	kv("SERVER_PORT", port)
	raddr, rport := httpwsgi.SplitHostPort(r.RemoteAddr)
	kv("REMOTE_ADDR", raddr)
	kv("REMOTE_PORT", rport)
	httpwsgi.AppendHeaderKeys(e, r, bodyLen)
	if body != nil {
		e.Latin1Str("hornbeam.body")
		e.Bytes(body)
	}
	e.EndDict()
}
