package accesslog

import (
	"strings"
	"testing"
	"time"
)

// lineSink records every Write as one line, and fails the test if a Write
// is not exactly one newline-terminated line.
type lineSink struct {
	t     *testing.T
	lines chan string
}

func newSink(t *testing.T) *lineSink { return &lineSink{t: t, lines: make(chan string, 1000)} }

func (s *lineSink) Write(b []byte) (int, error) {
	line := string(b)
	if !strings.HasSuffix(line, "\n") || strings.Count(line, "\n") != 1 {
		s.t.Errorf("a Write was not exactly one line: %q", line)
	}
	s.lines <- strings.TrimSuffix(line, "\n")
	return len(b), nil
}

// next waits for the next logged line.
func (s *lineSink) next(t *testing.T) string {
	t.Helper()
	select {
	case l := <-s.lines:
		return l
	case <-time.After(5 * time.Second):
		t.Fatal("no access log line written")
		return ""
	}
}
