package accesslog

import (
	"io"
	"net/http"
)

// responseWriter records the final status and the body size of a response.
//
// It keeps the wrapped writer's optional behaviour reachable:
//   - Flush (http.Flusher), forwarded through http.ResponseController;
//   - ReadFrom (io.ReaderFrom), forwarded to the wrapped writer's own
//     ReadFrom, so that net/http's sendfile path still applies;
//   - Unwrap, so http.NewResponseController(w) finds Hijack,
//     SetReadDeadline, SetWriteDeadline, EnableFullDuplex, ... underneath.
type responseWriter struct {
	http.ResponseWriter
	status int   // final status; 0 until one is written
	bytes  int64 // body bytes written
}

// WriteHeader forwards code. 1xx informational responses (103 Early Hints,
// 100 Continue, ...) are sent but not taken as the final status; 101
// Switching Protocols is final, as net/http treats it.
func (rw *responseWriter) WriteHeader(code int) {
	if rw.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		rw.status = code
	}
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *responseWriter) Write(b []byte) (int, error) {
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	n, err := rw.ResponseWriter.Write(b)
	rw.bytes += int64(n)
	return n, err
}

// ReadFrom hands src to the wrapped writer's ReadFrom (net/http's uses
// sendfile for an *os.File, or an io.LimitedReader of one, on plain TCP).
func (rw *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := rw.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(writerOnly{rw.ResponseWriter}, src)
	}
	rw.bytes += n
	return n, err
}

// Flush sends any buffered data to the client.
func (rw *responseWriter) Flush() {
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	http.NewResponseController(rw.ResponseWriter).Flush()
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (rw *responseWriter) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

// writerOnly hides every method but Write, so io.Copy cannot loop back.
type writerOnly struct{ io.Writer }
