package hornbeam

import (
	"fmt"
	"net/http"
)

// limits rejects requests over the request-line and header limits before
// any worker sees them. The connection is closed after the error.
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
	if n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 2; n > l.opts.LimitRequestLine {
		reject(http.StatusRequestURITooLong, fmt.Sprintf("URI Too Long: the request line is %d bytes, the limit is %d (--limit-request-line)", n, l.opts.LimitRequestLine))
		return
	}
	fields := 0
	for k, vs := range r.Header {
		fields += len(vs)
		for _, v := range vs {
			if n := len(k) + 2 + len(v); n > l.opts.LimitRequestFieldSize {
				reject(http.StatusRequestHeaderFieldsTooLarge, fmt.Sprintf("Request Header Fields Too Large: the %s field is %d bytes, the limit is %d (--limit-request-field-size)", k, n, l.opts.LimitRequestFieldSize))
				return
			}
		}
	}
	if fields > l.opts.LimitRequestFields {
		reject(http.StatusRequestHeaderFieldsTooLarge, fmt.Sprintf("Request Header Fields Too Large: %d fields, the limit is %d (--limit-request-fields)", fields, l.opts.LimitRequestFields))
		return
	}
	l.next.ServeHTTP(w, r)
}
