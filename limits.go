package hornbeam

import (
	"fmt"
	"net/http"
)

// limits rejects requests over the request-line and header limits before
// any worker sees them. The connection is closed after the error. It runs
// first, on the headers as the client sent them.
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
