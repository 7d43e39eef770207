package wsgiembed

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

// The request body is read whole before the app is called, as in the
// process mode (wsgi/handler.go, whose rules these functions follow: keep
// the two the same): in memory up to SpoolThreshold, then into an unlinked
// temporary file. A client trickling its body never holds Python.

// abandoned is readBody's status for a request nobody can be answered on
// (the client went away mid-body): the connection is cut.
const abandoned = -1

// readBody reads the request body, in memory or spooled to a file. n is -1
// when the request has no body. A non-zero status means an error was sent.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) (body []byte, file *os.File, n int64, status int) {
	if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		if r.Header.Get("Content-Length") != "" {
			return nil, nil, 0, 0
		}
		return nil, nil, -1, 0
	}
	if h.MaxBodySize > 0 && r.ContentLength > h.MaxBodySize {
		return nil, nil, 0, h.bodyError(w, &http.MaxBytesError{Limit: h.MaxBodySize})
	}
	src := io.Reader(r.Body)
	if h.MaxBodySize > 0 {
		src = http.MaxBytesReader(w, r.Body, h.MaxBodySize)
	}
	if h.BodyTimeout > 0 {
		rc := http.NewResponseController(w)
		src = &idleReader{r: src, rc: rc, d: h.BodyTimeout}
		defer func() {
			if status == 0 {
				rc.SetReadDeadline(time.Time{})
			}
		}()
	}
	threshold := h.SpoolThreshold
	if threshold <= 0 {
		threshold = DefaultSpoolThreshold
	}
	size := threshold + 1
	if r.ContentLength > 0 && r.ContentLength < size {
		size = r.ContentLength
	}
	buf := make([]byte, size)
	m, err := readFull(src, buf)
	if err == io.EOF && m == len(buf) {
		err = nil // the last bytes came with the end: as full as it gets
	}
	switch {
	case err == io.EOF: // the whole body, shorter than the buffer
		return buf[:m], nil, int64(m), 0
	case err != nil:
		return nil, nil, 0, h.bodyError(w, err)
	case r.ContentLength == int64(m) && int64(m) <= threshold:
		return buf, nil, int64(m), 0
	}
	// Larger than the threshold: spool it to a file.
	f, err := os.CreateTemp(h.SpoolDir, "hornbeam-body-*")
	if err != nil {
		h.logf("cannot spool a request body: %v", err)
		errorResponse(w, http.StatusInternalServerError, "Internal Server Error: cannot store the request body")
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
		return nil, nil, 0, h.bodyError(w, err)
	}
	return nil, f, int64(total), 0
}

// readFull reads until buf is full (nil) or the body ends: io.EOF for a
// clean end, or the reader's error.
func readFull(src io.Reader, buf []byte) (int, error) {
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
func (h *Handler) bodyError(w http.ResponseWriter, err error) int {
	http.NewResponseController(w).SetReadDeadline(time.Now()) // stop reading it
	fail := func(code int, msg string) int {
		w.Header().Set("Connection", "close")
		writeError(w, code, msg)
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
		return abandoned // the client went away mid-body: nobody to answer
	case strings.Contains(err.Error(), "chunk") || strings.Contains(err.Error(), "malformed"):
		return fail(http.StatusBadRequest, "Bad Request: malformed body: "+err.Error())
	}
	h.logf("reading a request body: %v", err)
	return abandoned
}

// idleReader fails a read that waits longer than d for bytes.
type idleReader struct {
	r  io.Reader
	rc *http.ResponseController
	d  time.Duration
}

func (i *idleReader) Read(p []byte) (int, error) {
	i.rc.SetReadDeadline(time.Now().Add(i.d))
	return i.r.Read(p)
}
