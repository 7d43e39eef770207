// Package httpwsgi holds what the two WSGI modes, wsgi (a pool of Python
// worker processes) and wsgiembed (CPython in the process), do the same way
// on the HTTP side: reading the request body before the app is called,
// the parts of the environ taken from the request, the checks on the app's
// status and headers, and the short plain-text error responses.
package httpwsgi

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// DefaultSpoolThreshold is the spool threshold used when it is 0. Above it a
// file is cheaper than a frame: measured with 1 MB POSTs (wrk -c16, 2
// workers), 64 KiB gave 1,380-1,600 req/s against 940-1,020 at 1 MiB. An
// inline body is copied about eight times on its way (into Go, into the
// frame, into the socket, out of it, into the worker's buffer, out of it,
// by marshal, by BytesIO); a file, twice. The embedded mode uses the same,
// so that the app sees the same wsgi.input types.
const DefaultSpoolThreshold = 64 << 10

// Abandoned is ReadBody's status for a request nobody can be answered on
// (the client went away mid-body): the connection is to be cut.
const Abandoned = -1

// BodyRules are how ReadBody reads a request body.
type BodyRules struct {
	// MaxSize is the largest body accepted (413 beyond); 0 = no limit.
	MaxSize int64
	// SpoolThreshold is the largest body kept in memory; a larger one goes
	// to an unlinked temporary file in SpoolDir (default os.TempDir()).
	// <= 0: DefaultSpoolThreshold.
	SpoolThreshold int64
	SpoolDir       string
	// IdleTimeout fails the read when the body stops arriving for this
	// long (408 when the client can still read it). 0 = no limit.
	IdleTimeout time.Duration
	// Logf, when set, logs a failure that is not the client's; level is
	// "error" or "warning".
	Logf func(level, format string, args ...any)
}

func (b *BodyRules) logf(level, format string, args ...any) {
	if b.Logf != nil {
		b.Logf(level, format, args...)
	}
}

// ReadBody reads the request body whole, in memory (body) or spooled to an
// unlinked temporary file (file, at offset 0, the caller's to close). n is
// the body's length, -1 when the request has no body. A non-zero status
// means an error was sent, or is Abandoned: nothing could be sent and the
// connection is to be cut.
func ReadBody(w http.ResponseWriter, r *http.Request, b BodyRules) (body []byte, file *os.File, n int64, status int) {
	if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		if r.Header.Get("Content-Length") != "" {
			return nil, nil, 0, 0
		}
		return nil, nil, -1, 0
	}
	if b.MaxSize > 0 && r.ContentLength > b.MaxSize {
		return nil, nil, 0, b.bodyError(w, &http.MaxBytesError{Limit: b.MaxSize})
	}
	src := io.Reader(r.Body)
	if b.MaxSize > 0 {
		src = http.MaxBytesReader(w, r.Body, b.MaxSize)
	}
	if b.IdleTimeout > 0 {
		rc := http.NewResponseController(w)
		src = IdleReader(src, rc, b.IdleTimeout)
		defer func() {
			if status == 0 {
				rc.SetReadDeadline(time.Time{})
			}
		}()
	}
	threshold := b.SpoolThreshold
	if threshold <= 0 {
		threshold = DefaultSpoolThreshold
	}
	size := threshold + 1
	if r.ContentLength > 0 && r.ContentLength < size {
		size = r.ContentLength
	}
	buf := make([]byte, size)
	m, err := ReadFull(src, buf)
	if err == io.EOF && m == len(buf) {
		err = nil // the last bytes came with the end: as full as it gets
	}
	switch {
	case err == io.EOF: // the whole body, shorter than the buffer
		return buf[:m], nil, int64(m), 0
	case err != nil:
		return nil, nil, 0, b.bodyError(w, err)
	case r.ContentLength == int64(m) && int64(m) <= threshold:
		return buf, nil, int64(m), 0
	}
	// Larger than the threshold: spool it to a file.
	f, err := os.CreateTemp(b.SpoolDir, "hornbeam-body-*")
	if err != nil {
		b.logf("error", "cannot spool a request body: %v", err)
		ErrorResponse(w, http.StatusInternalServerError, "Internal Server Error: cannot store the request body")
		return nil, nil, 0, http.StatusInternalServerError
	}
	os.Remove(f.Name()) // unlinked: gone when the last descriptor closes
	total, err := f.Write(buf)
	if err == nil {
		var k int64
		k, err = io.Copy(f, src)
		total += int(k)
	}
	if err == nil && r.ContentLength > 0 && int64(total) != r.ContentLength {
		err = io.ErrUnexpectedEOF
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, nil, 0, b.bodyError(w, err)
	}
	return nil, f, int64(total), 0
}

// ReadFull reads until buf is full (nil) or the body ends: io.EOF for a
// clean end, or the reader's error. net/http's body reader says
// io.ErrUnexpectedEOF when a body stops short of its length or its last
// chunk, so a truncated body never passes for a whole one.
func ReadFull(src io.Reader, buf []byte) (int, error) {
	m := 0
	for m < len(buf) {
		n, err := src.Read(buf[m:])
		m += n
		if err != nil {
			return m, err
		}
	}
	return m, nil
}

// bodyError answers a failed body read. The connection is closed after the
// answer, and no more of the body is read.
func (b *BodyRules) bodyError(w http.ResponseWriter, err error) int {
	http.NewResponseController(w).SetReadDeadline(time.Now()) // stop reading it
	fail := func(code int, msg string) int {
		w.Header().Set("Connection", "close")
		WriteError(w, code, msg)
		return code
	}
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &mbe):
		return fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("Request Entity Too Large: the body may be at most %d bytes", mbe.Limit))
	case errors.As(err, &ne) && ne.Timeout():
		return fail(http.StatusRequestTimeout, "Request Timeout: the body stopped arriving")
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return Abandoned // the client went away mid-body: nobody to answer
	case strings.Contains(err.Error(), "chunk") || strings.Contains(err.Error(), "malformed"):
		return fail(http.StatusBadRequest, "Bad Request: malformed body: "+err.Error())
	}
	b.logf("warning", "reading a request body: %v", err)
	return Abandoned
}

// IdleReader returns r with a read deadline on rc's connection set before
// each read: a read that waits longer than d for bytes fails. d <= 0: r.
func IdleReader(r io.Reader, rc *http.ResponseController, d time.Duration) io.Reader {
	if d <= 0 {
		return r
	}
	return &idleReader{r: r, rc: rc, d: d}
}

type idleReader struct {
	r  io.Reader
	rc *http.ResponseController
	d  time.Duration
}

func (i *idleReader) Read(p []byte) (int, error) {
	i.rc.SetReadDeadline(time.Now().Add(i.d))
	return i.r.Read(p)
}
