package asgi

import (
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hornbeam-go/hornbeam/internal/httpwsgi"
	"github.com/hornbeam-go/hornbeam/proxy"
	"github.com/hornbeam-go/hornbeam/pymarshal"
)

// chunk is the largest request body piece passed at once; a body of at
// most this size comes with the scope.
const chunk = 64 << 10

// ServeHTTP serves one request (HTTP, or a WebSocket handshake) with the
// first app; Handler(i) serves with app i.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.serve(w, r, 0)
}

// Handler returns the handler of mount i: its requests' scopes have the
// mount's prefix as root_path (and the whole path as path: ASGI 2.4).
func (s *Server) Handler(i int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, i) })
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, app int) {
	if isWebSocket(r) {
		s.serveWS(w, r, app)
		return
	}
	start := time.Now()
	status := 0 // stays 0 when the connection is cut (abort panics)
	if s.cfg.Observe != nil {
		defer func() { s.cfg.Observe(status, time.Since(start)) }()
	}
	status = s.serveHTTP(w, r, app, start)
}

// response is an HTTP response in progress, from the app's ops.
type response struct {
	w        http.ResponseWriter
	r        *http.Request
	status   int  // from http.response.start; 0 before
	wrote    bool // head written
	trailers bool
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request, app int, start time.Time) int {
	if s.closing.Load() {
		httpwsgi.WriteError(w, http.StatusServiceUnavailable, "the server is shutting down")
		return http.StatusServiceUnavailable
	}
	if s.cfg.MaxBodySize > 0 && r.ContentLength > s.cfg.MaxBodySize {
		w.Header().Set("Connection", "close")
		httpwsgi.WriteError(w, http.StatusRequestEntityTooLarge, "request body too large")
		return http.StatusRequestEntityTooLarge
	}
	rc := http.NewResponseController(w)
	src := httpwsgi.IdleReader(r.Body, rc, s.cfg.BodyTimeout)
	body, more, err := s.firstChunk(src, r)
	if err != nil {
		return s.bodyError(w, err)
	}
	st := s.newStream(2)
	s.add(st)
	defer st.leave()
	s.post(evHTTP, st.id, func(e *pymarshal.Encoder) { s.appendScope(e, r, "http", app) }, body, more)
	if more {
		b := &bodyReader{s: s, st: st, r: r, src: src, rc: rc, total: int64(len(body)), stop: make(chan struct{}), exited: make(chan struct{})}
		go b.run()
		defer b.end()
	}
	var expired <-chan time.Time
	if s.cfg.Timeout > 0 {
		t := time.NewTimer(s.cfg.Timeout - time.Since(start))
		defer t.Stop()
		expired = t.C
	}
	resp := &response{w: w, r: r}
	ctx := r.Context()
	for {
		select {
		case <-st.notify:
		case <-ctx.Done():
			return 0 // the client is gone: leave posts the disconnect
		case <-expired:
			s.post(evCancel, st.id)
			s.logf("error: %s %s timed out after %s (--timeout): its task is cancelled", r.Method, r.URL.Path, time.Since(start).Round(time.Millisecond))
			w.Header().Del("Content-Length") // the app's http.response.start may have set one
			httpwsgi.WriteError(w, http.StatusGatewayTimeout, "the application did not answer in time")
			return http.StatusGatewayTimeout
		}
		ops := st.take()
		for i, o := range ops {
			if status, end := s.apply(st, resp, o); end {
				s.logLost(ops[i+1:])
				return status
			}
		}
		if resp.wrote {
			// The response has started: --timeout bounds the wait for it,
			// not a stream's length (server-sent events, long downloads).
			expired = nil
		}
	}
}

// apply carries out one op of an HTTP response; end is true when the
// response is over (status is what was sent, 0 for a cut connection).
func (s *Server) apply(st *stream, resp *response, o op) (status int, end bool) {
	w := resp.w
	switch o.kind {
	case opStart:
		hd := w.Header()
		for _, h := range o.headers {
			httpwsgi.AddHeader(hd, resp.r, h[0], h[1])
		}
		resp.status, resp.trailers = o.status, o.more
	case opHint:
		httpwsgi.WriteEarlyHints(w, o.headers)
	case opBody:
		if !resp.wrote {
			if !o.more && !resp.trailers && resp.r.Method != http.MethodHead && w.Header().Get("Content-Length") == "" {
				w.Header().Set("Content-Length", strconv.Itoa(len(o.data)))
			}
			resp.head()
		}
		if len(o.data) > 0 {
			if _, err := w.Write(o.data); err != nil {
				return 0, true
			}
		}
		if o.more || resp.trailers { // trailers need the chunked encoding: flush before the end
			if err := http.NewResponseController(w).Flush(); err != nil {
				return 0, true
			}
		}
		st.sent(len(o.data))
		if !o.more && !resp.trailers {
			return resp.status, true
		}
	case opTrailers:
		if !resp.wrote {
			resp.head()
		}
		// HTTP/1.1 sends trailers only to a client that said it takes
		// them (TE: trailers), as chunked trailer fields; h2 always can.
		if resp.r.ProtoMajor >= 2 || strings.Contains(strings.ToLower(resp.r.Header.Get("Te")), "trailers") {
			hd := w.Header()
			for _, h := range o.headers {
				hd.Add(http.TrailerPrefix+h[0], h[1])
			}
		}
		if !o.more {
			return resp.status, true
		}
	case opFile:
		return s.sendFile(resp, o.text), true
	case opZeroCopy:
		return s.zeroCopy(resp, o)
	case opDone:
		if o.hasText && !strings.HasPrefix(o.text, "cancelled") {
			s.logf("error: %s", strings.TrimRight(o.text, "\n"))
		}
		if resp.wrote {
			// The app returned with its response unfinished: cut the
			// connection, so the client cannot take it for whole.
			if !o.hasText {
				s.logf("error: %s %s: the ASGI app returned before its response ended (more_body=True last)", resp.r.Method, resp.r.URL.Path)
			}
			httpwsgi.Abort()
		}
		if resp.status == 0 && !o.hasText {
			s.logf("error: %s %s: the ASGI app returned without sending a response", resp.r.Method, resp.r.URL.Path)
		}
		w.Header().Del("Content-Length")
		httpwsgi.WriteError(w, http.StatusInternalServerError, "Internal Server Error")
		return http.StatusInternalServerError, true
	}
	return 0, false
}

func (resp *response) head() {
	resp.wrote = true
	resp.w.WriteHeader(resp.status)
}

// sendFile answers http.response.pathsend: Go sends the file (sendfile
// on plain TCP).
func (s *Server) sendFile(resp *response, path string) int {
	f, err := os.Open(path)
	var fi os.FileInfo
	if err == nil {
		fi, err = f.Stat()
		defer f.Close()
	}
	if err != nil || !fi.Mode().IsRegular() {
		if err == nil {
			err = errors.New("not a regular file")
		}
		s.logf("error: %s %s: http.response.pathsend: %v", resp.r.Method, resp.r.URL.Path, err)
		if resp.wrote {
			httpwsgi.Abort()
		}
		httpwsgi.WriteError(resp.w, http.StatusInternalServerError, "Internal Server Error")
		return http.StatusInternalServerError
	}
	if !resp.wrote {
		if resp.w.Header().Get("Content-Length") == "" {
			resp.w.Header().Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
		}
		resp.head()
	}
	if resp.r.Method != http.MethodHead {
		if _, err := io.Copy(resp.w, f); err != nil {
			return 0
		}
	}
	return resp.status
}

// zeroCopy answers http.response.zerocopysend: count bytes (-1: to the
// end) of the app's file from offset, sent by Go (sendfile on plain TCP).
// The file is reopened through /proc so that its offset is not the app's.
func (s *Server) zeroCopy(resp *response, o op) (int, bool) {
	dup := os.NewFile(uintptr(o.fd), "zerocopysend")
	defer dup.Close()
	f := dup
	if own, err := os.Open(fmt.Sprintf("/proc/self/fd/%d", o.fd)); err == nil {
		defer own.Close()
		f = own
	}
	fi, err := f.Stat()
	if err == nil && o.n < 0 {
		o.n = fi.Size() - o.off
	}
	if err == nil {
		_, err = f.Seek(o.off, io.SeekStart)
	}
	if err != nil || o.n < 0 {
		s.logf("error: %s %s: http.response.zerocopysend: %v (offset %d, count %d)", resp.r.Method, resp.r.URL.Path, err, o.off, o.n)
		if resp.wrote {
			httpwsgi.Abort()
		}
		httpwsgi.WriteError(resp.w, http.StatusInternalServerError, "Internal Server Error")
		return http.StatusInternalServerError, true
	}
	if !resp.wrote {
		if !o.more && !resp.trailers && resp.w.Header().Get("Content-Length") == "" {
			resp.w.Header().Set("Content-Length", strconv.FormatInt(o.n, 10))
		}
		resp.head()
	}
	if resp.r.Method != http.MethodHead {
		if _, err := io.Copy(resp.w, io.LimitReader(f, o.n)); err != nil {
			return 0, true
		}
	}
	if o.more || resp.trailers {
		if err := http.NewResponseController(resp.w).Flush(); err != nil {
			return 0, true
		}
		return 0, false
	}
	return resp.status, true
}

// firstChunk reads the body (from src: r.Body within the body timeout) up
// to chunk bytes: all of it, usually.
func (s *Server) firstChunk(src io.Reader, r *http.Request) (body []byte, more bool, err error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return []byte{}, false, nil
	}
	n := int64(chunk)
	if r.ContentLength > 0 && r.ContentLength < n {
		n = r.ContentLength
	}
	buf := make([]byte, n)
	got, err := httpwsgi.ReadFull(src, buf)
	if err == io.EOF {
		return buf[:got], false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if r.ContentLength > 0 && int64(got) == r.ContentLength {
		return buf[:got], false, nil
	}
	return buf[:got], true, nil
}

// bodyReader passes the rest of a body, a chunk each time the app has
// taken the previous one: a client sending faster than the app reads is
// not read further (TCP pushes back).
type bodyReader struct {
	s       *Server
	st      *stream
	r       *http.Request
	src     io.Reader // r.Body within the body timeout
	rc      *http.ResponseController
	total   int64
	stop    chan struct{} // the handler is returning
	exited  chan struct{}
	reading atomic.Bool
}

func (b *bodyReader) run() {
	defer close(b.exited)
	s, st, r := b.s, b.st, b.r
	for {
		select {
		case <-st.want:
		case <-b.stop:
			return
		}
		buf := make([]byte, chunk)
		b.reading.Store(true)
		n, err := httpwsgi.ReadFull(b.src, buf)
		b.reading.Store(false)
		b.total += int64(n)
		if s.cfg.MaxBodySize > 0 && b.total > s.cfg.MaxBodySize {
			s.logf("warning: %s %s: request body over --max-body-size (%d bytes): the app sees a disconnect", r.Method, r.URL.Path, s.cfg.MaxBodySize)
			s.post(evDisconnect, st.id)
			return
		}
		switch {
		case err == io.EOF:
			s.post(evBody, st.id, buf[:n], false)
			return
		case err != nil:
			s.post(evDisconnect, st.id) // the client left mid-body, or stalled
			return
		}
		s.post(evBody, st.id, buf[:n], true)
	}
}

// end stops the reader before the handler returns (net/http then owns the
// body again): a read in progress is cut short.
func (b *bodyReader) end() {
	close(b.stop)
	if b.reading.Load() {
		b.rc.SetReadDeadline(time.Now())
	}
	<-b.exited
}

func (s *Server) bodyError(w http.ResponseWriter, err error) int {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		httpwsgi.WriteError(w, http.StatusRequestEntityTooLarge, "request body too large")
		return http.StatusRequestEntityTooLarge
	}
	httpwsgi.Abort() // the client left mid-body: nobody to answer
	return 0
}

// appendScope writes the scope tuple _asgi.Runner._scope reads: (type,
// http_version, method, scheme, path, raw_path, query_string, root_path,
// headers, client, server, subprotocols, tls, app index), tls being None or
// (tls_version, cipher_suite, [client certificate PEM, ...], client
// subject or None).
func (s *Server) appendScope(e *pymarshal.Encoder, r *http.Request, kind string, app int) {
	e.BeginTuple(14)
	e.Str(kind)
	switch {
	case r.ProtoMajor >= 2:
		e.Str("2")
	case r.ProtoMinor == 0:
		e.Str("1.0")
	default:
		e.Str("1.1")
	}
	e.Str(r.Method)
	scheme := proxy.Scheme(r)
	if kind == "websocket" {
		scheme = map[string]string{"https": "wss"}[scheme]
		if scheme == "" {
			scheme = "ws"
		}
	}
	e.Str(scheme)
	e.Str(r.URL.Path)
	e.Bytes([]byte(r.URL.EscapedPath()))
	e.Bytes([]byte(r.URL.RawQuery))
	e.Str(strings.TrimRight(s.mounts[app].Prefix, "/"))
	appendHeaders(e, r)
	host, port := httpwsgi.SplitHostPort(r.RemoteAddr)
	appendAddr(e, host, port)
	host, port = httpwsgi.ServerAddr(r)
	appendAddr(e, host, port)
	var subs []string
	for _, v := range r.Header.Values("Sec-Websocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				subs = append(subs, p)
			}
		}
	}
	e.BeginList(len(subs))
	for _, p := range subs {
		e.Str(p)
	}
	defer e.Int(int64(app))
	if r.TLS == nil {
		e.None()
		return
	}
	e.BeginTuple(4)
	e.Int(int64(r.TLS.Version))
	e.Int(int64(r.TLS.CipherSuite))
	e.BeginList(len(r.TLS.PeerCertificates))
	for _, c := range r.TLS.PeerCertificates {
		e.Str(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})))
	}
	if len(r.TLS.PeerCertificates) > 0 {
		e.Str(r.TLS.PeerCertificates[0].Subject.String())
	} else {
		e.None()
	}
}

// appendHeaders writes the request headers as [(name, value)], names in
// lower case, host first, a repeated header once per value. Go keeps the
// order of one name's values, not the order between names: names are
// sorted, so the order is at least stable.
func appendHeaders(e *pymarshal.Encoder, r *http.Request) {
	names := make([]string, 0, len(r.Header))
	n := 1
	for k, vs := range r.Header {
		if k == "Host" {
			continue
		}
		names = append(names, k)
		n += len(vs)
	}
	sort.Strings(names)
	e.BeginList(n)
	e.BeginTuple(2)
	e.Bytes([]byte("host"))
	e.Bytes([]byte(r.Host))
	for _, k := range names {
		lk := []byte(strings.ToLower(k))
		for _, v := range r.Header[k] {
			e.BeginTuple(2)
			e.Bytes(lk)
			e.Bytes([]byte(v))
		}
	}
}

func appendAddr(e *pymarshal.Encoder, host, port string) {
	p, err := strconv.Atoi(port)
	if host == "" || err != nil {
		e.None()
		return
	}
	e.BeginTuple(2)
	e.Str(host)
	e.Int(int64(p))
}
