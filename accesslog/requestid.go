package accesslog

import (
	"crypto/rand"
	"encoding/hex"
	"maps"
	"net/http"
)

// RequestIDHeader is the header carrying the request id, both ways.
const RequestIDHeader = "X-Request-Id"

// MaxRequestIDLen is the longest incoming X-Request-Id that is kept.
const MaxRequestIDLen = 200

// RequestID returns next wrapped so that every request has an id:
//
//   - an incoming X-Request-Id is kept when it is valid: 1 to 200
//     printable ASCII characters without spaces ('!' to '~');
//   - otherwise (absent, empty, too long, control or non-ASCII bytes,
//     spaces, or several X-Request-Id fields) a fresh one is made: 16
//     bytes from crypto/rand as 32 lower-case hex digits.
//
// The id is set on the request's X-Request-Id header (a WSGI app sees it
// as HTTP_X_REQUEST_ID; the access log shows it as %({x-request-id}i)s and
// as request_id in JSON lines) and on the response's X-Request-Id header.
// The request is copied, not modified, when its header changes.
func RequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		vs := r.Header[RequestIDHeader]
		var id string
		if len(vs) == 1 && ValidRequestID(vs[0]) {
			id = vs[0]
		} else {
			id = NewRequestID()
			r2 := new(http.Request)
			*r2 = *r
			// A shallow copy: the value slices are shared and never
			// written, only this key is replaced. Header.Clone would
			// copy every value of every request.
			r2.Header = maps.Clone(r.Header)
			if r2.Header == nil {
				r2.Header = make(http.Header, 1)
			}
			r2.Header[RequestIDHeader] = []string{id}
			r = r2
		}
		w.Header().Set(RequestIDHeader, id)
		next.ServeHTTP(w, r)
	})
}

// ValidRequestID reports whether id may be kept as a request id: 1 to
// MaxRequestIDLen characters from '!' to '~'.
func ValidRequestID(id string) bool {
	if len(id) == 0 || len(id) > MaxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < '!' || id[i] > '~' {
			return false
		}
	}
	return true
}

// NewRequestID returns a fresh random request id: 32 hex digits.
func NewRequestID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go >= 1.24)
	return hex.EncodeToString(b[:])
}
