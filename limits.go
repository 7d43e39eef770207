package hornbeam

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
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

// accessLog writes one line per request in gunicorn's default format:
// %(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s", followed by
// the duration in microseconds.
type accessLog struct {
	mu   sync.Mutex
	w    io.Writer
	next http.Handler
}

func (a *accessLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &recorder{ResponseWriter: w}
	defer func() {
		status := strconv.Itoa(rec.status)
		if rec.status == 0 {
			status = "-"
		}
		host, _ := splitHost(r.RemoteAddr)
		line := fmt.Sprintf("%s - - [%s] \"%s %s %s\" %s %d \"%s\" \"%s\" %d\n",
			host, start.Format("02/Jan/2006:15:04:05 -0700"), r.Method, r.RequestURI, r.Proto,
			status, rec.bytes, orDash(r.Referer()), orDash(r.UserAgent()), time.Since(start).Microseconds())
		a.mu.Lock()
		io.WriteString(a.w, line)
		a.mu.Unlock()
	}()
	a.next.ServeHTTP(rec, r)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return strconv.Quote(s)[1 : len(strconv.Quote(s))-1]
}

// recorder notes the status and body size of a response. It keeps the
// wrapped writer's Flush and ReadFrom (sendfile) reachable.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if code >= 200 && r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := io.Copy(r.ResponseWriter, src)
	r.bytes += n
	return n, err
}

func (r *recorder) Flush() { http.NewResponseController(r.ResponseWriter).Flush() }

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
