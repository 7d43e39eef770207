package httpwsgi

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// ErrorResponse sends a short plain-text error, dropping the headers set so
// far but Connection and X-Request-Id.
func ErrorResponse(w http.ResponseWriter, code int, msg string) {
	hd := w.Header()
	for k := range hd {
		if k != "Connection" && k != "X-Request-Id" {
			delete(hd, k)
		}
	}
	WriteError(w, code, msg)
}

// WriteError sends a short plain-text error with the headers already set.
func WriteError(w http.ResponseWriter, code int, msg string) {
	hd := w.Header()
	hd.Set("Content-Type", "text/plain; charset=utf-8")
	hd.Set("Content-Length", strconv.Itoa(len(msg)+1))
	w.WriteHeader(code)
	io.WriteString(w, msg+"\n")
}

// Abort cuts the connection: the client must not take a truncated body for
// a whole one.
func Abort() { panic(http.ErrAbortHandler) }

// ParseStatus checks the app's status line, "NNN Reason" (or "NNN") with
// NNN from 200 to 999, and returns its code.
func ParseStatus(s string) (int, error) {
	if len(s) < 3 || (len(s) > 3 && s[3] != ' ') {
		return 0, errors.New("want \"NNN Reason\"")
	}
	code, err := strconv.Atoi(s[:3])
	if err != nil || code < 200 || code > 999 {
		return 0, errors.New("the code must be a number from 200 to 999")
	}
	if strings.ContainsAny(s, "\r\n\x00") {
		return 0, errors.New("control characters in the status")
	}
	return code, nil
}

// ValidHeader reports whether a header may go on the wire as it is.
func ValidHeader(name, value string) bool {
	return httpguts.ValidHeaderFieldName(name) && httpguts.ValidHeaderFieldValue(value)
}

// hopHeaders are connection-specific: the server, not the app, sets them.
var hopHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true,
	"Transfer-Encoding": true, "Upgrade": true, "Te": true, "Trailer": true,
}

// AddHeader adds one of the app's response headers (already checked with
// ValidHeader) to hd. A connection-specific one is dropped, except that
// "Connection: close" on an HTTP/1.x request closes the connection after
// the response.
func AddHeader(hd http.Header, r *http.Request, name, value string) {
	name = http.CanonicalHeaderKey(name)
	if hopHeaders[name] {
		if name == "Connection" && strings.EqualFold(value, "close") && r.ProtoMajor == 1 {
			hd.Set("Connection", "close")
		}
		return
	}
	hd[name] = append(hd[name], value)
}

// WriteEarlyHints sends 103 Early Hints with the headers hs (already
// checked with ValidHeader), which are not left in w's header map.
func WriteEarlyHints(w http.ResponseWriter, hs [][2]string) {
	hd := w.Header()
	for _, kv := range hs {
		hd.Add(kv[0], kv[1])
	}
	w.WriteHeader(http.StatusEarlyHints)
	for _, kv := range hs {
		hd.Del(kv[0])
	}
}

// OrDash is s, or "-" when s is empty (for log lines).
func OrDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
