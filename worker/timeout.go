package worker

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// timeouts answers 504 for a request still in the app after d. A Python
// thread cannot be stopped, so the app goes on in its goroutine, writing
// into a guarded writer that drops what it writes after the 504; the worker
// stops accepting connections at once and asks the master for a
// replacement, finishes its other requests, then dumps the stuck thread's
// stack and exits (worker.shutdown).
type timeouts struct {
	next http.Handler
	d    time.Duration
	w    *worker
}

func (t *timeouts) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	g := &guarded{rw: rw, header: make(http.Header)}
	done := make(chan any, 1)
	go func() {
		defer func() { done <- recover() }()
		t.next.ServeHTTP(g, r)
	}()
	timer := time.NewTimer(t.d)
	select {
	case p := <-done:
		timer.Stop()
		if p != nil {
			panic(p) // http.ErrAbortHandler: cut the connection, in the server's goroutine
		}
		return
	case <-timer.C:
	}
	started := g.expire()
	t.w.timedOut(fmt.Sprintf("request %s %s (request id %s) timed out after %s (--timeout %s)",
		r.Method, r.URL.Path, orDash(r.Header.Get("X-Request-Id")), t.d, t.d))
	if started {
		panic(http.ErrAbortHandler) // a truncated body must never look whole
	}
	msg := "Gateway Timeout: the application did not answer in time\n"
	h := rw.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", fmt.Sprint(len(msg)))
	h.Set("Connection", "close")
	rw.WriteHeader(http.StatusGatewayTimeout)
	io.WriteString(rw, msg)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// timedOut is called once per request past --timeout.
func (w *worker) timedOut(reason string) {
	w.stuck.Add(1)
	w.log.Printf("error: %s; this worker takes no more connections, finishes its other requests (up to %s) and is replaced", reason, w.grace())
	w.stopAccepting.Do(func() {
		go w.srv.Shutdown(context.Background()) // closes the listeners now; waits in its goroutine
	})
	w.askRetire(reason)
}

// guarded is the ResponseWriter the app writes through when a timeout may
// answer in its place: once expired, what the app writes is dropped. The
// app's headers are kept apart until it writes its head, so the 504 never
// races with them.
type guarded struct {
	mu      sync.Mutex
	rw      http.ResponseWriter
	header  http.Header
	started bool
	expired bool
}

// expire ends the app's access; it reports whether the head was written.
func (g *guarded) expire() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.expired = true
	return g.started
}

func (g *guarded) Header() http.Header { return g.header }

func (g *guarded) WriteHeader(code int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.writeHeaderLocked(code)
}

func (g *guarded) writeHeaderLocked(code int) {
	if g.expired {
		return
	}
	if code >= 200 || code == http.StatusSwitchingProtocols {
		if g.started {
			return
		}
		g.started = true
	}
	h := g.rw.Header()
	for k := range h {
		delete(h, k)
	}
	for k, v := range g.header {
		h[k] = v
	}
	g.rw.WriteHeader(code)
}

func (g *guarded) Write(b []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.expired {
		return 0, http.ErrHandlerTimeout
	}
	if !g.started {
		g.writeHeaderLocked(http.StatusOK)
	}
	return g.rw.Write(b)
}

// ReadFrom lets a file response reach the connection's sendfile.
func (g *guarded) ReadFrom(src io.Reader) (int64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.expired {
		return 0, http.ErrHandlerTimeout
	}
	if !g.started {
		g.writeHeaderLocked(http.StatusOK)
	}
	if rf, ok := g.rw.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(g.rw, src)
}

func (g *guarded) FlushError() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.expired {
		return http.ErrHandlerTimeout
	}
	if !g.started {
		g.writeHeaderLocked(http.StatusOK)
	}
	return http.NewResponseController(g.rw).Flush()
}

func (g *guarded) Flush() { g.FlushError() }

// Hijack is refused: a hijacked connection would outlive the timeout's
// control of it.
func (g *guarded) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return nil, nil, http.ErrNotSupported
}
