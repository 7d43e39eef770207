// Package accesslog writes gunicorn-compatible access logs for a Go
// http.Handler, and tags requests with an X-Request-Id.
//
// A Logger writes one line per request, either in a gunicorn
// --access-logformat format (so existing format strings carry over) or as
// JSON lines. Formats are Python %-style strings of atoms:
//
//	%(h)s          remote address (host part of r.RemoteAddr; '-' if none)
//	%(l)s          '-'
//	%(u)s          user name from Basic authorization, else '-'
//	%(t)s          request start time, [10/Oct/2000:13:55:36 -0700]
//	%(r)s          request line, "GET /path?q=1 HTTP/1.1"
//	%(m)s          method
//	%(U)s          path, without the query string (percent-decoded)
//	%(q)s          query string (without '?'; empty if none)
//	%(H)s          protocol, e.g. HTTP/1.1, HTTP/2.0
//	%(s)s          final status (1xx informational responses are skipped)
//	%(B)s          response body length in bytes
//	%(b)s          response body length, or '-' when it is 0 (CLF)
//	%(f)s          Referer, else '-'
//	%(a)s          User-Agent, else '-'
//	%(T)s          request time, whole seconds
//	%(D)s          request time, microseconds
//	%(M)s          request time, milliseconds
//	%(L)s          request time, decimal seconds (1.000250)
//	%(p)s          process id, written <1234> as gunicorn does
//	%({name}i)s    request header (case-insensitive; repeated values joined by ","; '-' if absent)
//	%({name}o)s    response header (same rules)
//	%({name}e)s    environment variable ('-' if unset)
//	%%             a literal '%'
//
// The format is parsed once, by New; an unknown atom is an error naming it.
//
// Every value taken from the request or the response is escaped so that a
// client cannot forge log lines or break quoting: control characters, bytes
// that are not UTF-8, U+2028/U+2029 and other non-printing runes become
// \xHH (or \uHHHH), and '"' and '\' are preceded by a backslash (Apache's
// rules).
package accesslog

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Logger writes one access log line per request. It is safe for concurrent
// use; each line reaches the writer in a single Write call.
type Logger struct {
	mu        sync.Mutex
	w         io.Writer
	parts     []part
	jsonLines bool
	pid       string
	now       func() time.Time // for tests
}

// New returns a Logger writing to w. format is a gunicorn access log
// format ("" means DefaultFormat); an unknown atom or a malformed format
// is an error. With jsonLines, each line is instead one JSON object with
// the fixed keys time (RFC 3339, nanoseconds), remote, method, path,
// query, proto, status, bytes, duration_ms, referer, user_agent and
// request_id; format is still checked but not used.
func New(w io.Writer, format string, jsonLines bool) (*Logger, error) {
	if format == "" {
		format = DefaultFormat
	}
	parts, err := parseFormat(format)
	if err != nil {
		return nil, err
	}
	return &Logger{w: w, parts: parts, jsonLines: jsonLines, pid: "<" + strconv.Itoa(os.Getpid()) + ">", now: time.Now}, nil
}

// Handler returns next wrapped so that every request is logged once it
// has been served (also when next panics, e.g. with http.ErrAbortHandler).
//
// The ResponseWriter next receives still offers Flush, ReadFrom (so
// sendfile keeps working) and Unwrap (for http.ResponseController).
//
// Put it inside the proxy middleware (so %(h)s is the real client) and
// inside accesslog.RequestID (so the request id is logged).
func (l *Logger) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := l.now()
		rw := &responseWriter{ResponseWriter: w}
		completed := false
		defer func() {
			status := rw.status
			if status == 0 && completed {
				status = http.StatusOK // what net/http sends for a handler that wrote nothing
			}
			l.log(r, rw, status, start, l.now().Sub(start))
		}()
		next.ServeHTTP(rw, r)
		completed = true
	})
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (l *Logger) log(r *http.Request, rw *responseWriter, status int, start time.Time, d time.Duration) {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 64<<10 {
			bufPool.Put(buf)
		}
	}()
	if l.jsonLines {
		l.appendJSON(buf, r, rw, status, start, d)
	} else {
		l.appendText(buf, r, rw, status, start, d)
	}
	l.mu.Lock()
	l.w.Write(buf.Bytes())
	l.mu.Unlock()
}

func (l *Logger) appendText(buf *bytes.Buffer, r *http.Request, rw *responseWriter, status int, start time.Time, d time.Duration) {
	for _, p := range l.parts {
		switch p.kind {
		case kLiteral:
			buf.WriteString(p.text)
		case kRemote:
			appendEscaped(buf, orDash(remoteHost(r.RemoteAddr)))
		case kDash:
			buf.WriteByte('-')
		case kUser:
			user, _, _ := r.BasicAuth()
			appendEscaped(buf, orDash(user))
		case kTime:
			buf.WriteByte('[')
			buf.WriteString(start.Format("02/Jan/2006:15:04:05 -0700"))
			buf.WriteByte(']')
		case kRequestLine:
			appendEscaped(buf, r.Method)
			buf.WriteByte(' ')
			appendEscaped(buf, requestURI(r))
			buf.WriteByte(' ')
			appendEscaped(buf, r.Proto)
		case kMethod:
			appendEscaped(buf, r.Method)
		case kPath:
			appendEscaped(buf, r.URL.Path)
		case kQuery:
			appendEscaped(buf, r.URL.RawQuery)
		case kProto:
			appendEscaped(buf, r.Proto)
		case kStatus:
			if status == 0 {
				buf.WriteByte('-')
			} else {
				buf.WriteString(strconv.Itoa(status))
			}
		case kBytes:
			buf.WriteString(strconv.FormatInt(rw.bytes, 10))
		case kBytesCLF:
			if rw.bytes == 0 {
				buf.WriteByte('-')
			} else {
				buf.WriteString(strconv.FormatInt(rw.bytes, 10))
			}
		case kReferer:
			appendEscaped(buf, orDash(r.Header.Get("Referer")))
		case kUserAgent:
			appendEscaped(buf, orDash(r.Header.Get("User-Agent")))
		case kSeconds:
			buf.WriteString(strconv.FormatInt(int64(d/time.Second), 10))
		case kMicros:
			buf.WriteString(strconv.FormatInt(d.Microseconds(), 10))
		case kMillis:
			buf.WriteString(strconv.FormatInt(d.Milliseconds(), 10))
		case kDecimal:
			us := d.Microseconds()
			buf.WriteString(strconv.FormatInt(us/1e6, 10))
			buf.WriteByte('.')
			frac := strconv.FormatInt(us%1e6, 10)
			buf.WriteString("000000"[len(frac):])
			buf.WriteString(frac)
		case kPID:
			buf.WriteString(l.pid)
		case kReqHeader:
			if p.text == "Host" {
				appendEscaped(buf, orDash(r.Host))
			} else {
				appendEscaped(buf, orDash(strings.Join(r.Header[p.text], ",")))
			}
		case kRespHeader:
			appendEscaped(buf, orDash(strings.Join(rw.Header()[p.text], ",")))
		case kEnv:
			v, ok := os.LookupEnv(p.text)
			if !ok {
				v, ok = os.LookupEnv(strings.ToUpper(p.text))
			}
			if !ok {
				v = "-"
			}
			appendEscaped(buf, v)
		}
	}
	buf.WriteByte('\n')
}

// jsonLine is one JSON access log line; the keys are fixed.
type jsonLine struct {
	Time       string  `json:"time"`
	Remote     string  `json:"remote"`
	Method     string  `json:"method"`
	Path       string  `json:"path"`
	Query      string  `json:"query"`
	Proto      string  `json:"proto"`
	Status     int     `json:"status"`
	Bytes      int64   `json:"bytes"`
	DurationMS float64 `json:"duration_ms"`
	Referer    string  `json:"referer"`
	UserAgent  string  `json:"user_agent"`
	RequestID  string  `json:"request_id"`
}

func (l *Logger) appendJSON(buf *bytes.Buffer, r *http.Request, rw *responseWriter, status int, start time.Time, d time.Duration) {
	line := jsonLine{
		Time:       start.Format(time.RFC3339Nano),
		Remote:     remoteHost(r.RemoteAddr),
		Method:     r.Method,
		Path:       r.URL.Path,
		Query:      r.URL.RawQuery,
		Proto:      r.Proto,
		Status:     status,
		Bytes:      rw.bytes,
		DurationMS: float64(d.Microseconds()) / 1000,
		Referer:    r.Header.Get("Referer"),
		UserAgent:  r.Header.Get("User-Agent"),
		RequestID:  r.Header.Get(RequestIDHeader),
	}
	// encoding/json escapes control characters (and U+2028/U+2029) and
	// replaces invalid UTF-8 with U+FFFD; Encode ends the line with '\n'.
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	enc.Encode(&line)
}

func requestURI(r *http.Request) string {
	if r.RequestURI != "" {
		return r.RequestURI
	}
	return r.URL.RequestURI()
}

// remoteHost is the address part of a RemoteAddr ("1.2.3.4:5" -> "1.2.3.4",
// "[::1]:5" -> "::1"); anything else (a unix socket's "@") is returned as is.
func remoteHost(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

const hexDigits = "0123456789abcdef"

// appendEscaped writes s with control characters, invalid UTF-8 and
// non-printing runes escaped, and '"' and '\' backslash-escaped.
func appendEscaped(buf *bytes.Buffer, s string) {
	i := 0
	for i < len(s) {
		c := s[i]
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError && unicode.IsPrint(r) {
				i += size
				continue
			}
		}
		break
	}
	if i == len(s) {
		buf.WriteString(s) // nothing to escape: the common case
		return
	}
	buf.WriteString(s[:i])
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			buf.WriteByte('\\')
			buf.WriteByte(c)
			i++
		case c >= 0x20 && c < 0x7f:
			buf.WriteByte(c)
			i++
		case c < utf8.RuneSelf:
			buf.WriteString(`\x`)
			buf.WriteByte(hexDigits[c>>4])
			buf.WriteByte(hexDigits[c&0xf])
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			switch {
			case r == utf8.RuneError && size == 1:
				buf.WriteString(`\x`)
				buf.WriteByte(hexDigits[c>>4])
				buf.WriteByte(hexDigits[c&0xf])
			case unicode.IsPrint(r):
				buf.WriteString(s[i : i+size])
			default:
				buf.WriteString(`\u`)
				h := strconv.FormatInt(int64(r), 16)
				for k := len(h); k < 4; k++ {
					buf.WriteByte('0')
				}
				buf.WriteString(h)
			}
			i += size
		}
	}
}
