// Package errlog writes hornbeam's error log. Every line has one format,
// the local time to the millisecond and a level:
//
//	2026-12-01 10:00:00.123 [INFO] hornbeam 0.1.0 listening on http://127.0.0.1:8000 (...)
//	2026-12-01 10:00:00.456 [WARNING] worker 4242 (slot 1) was killed by signal 9 (SIGKILL, killed)
//
// Code that logs through a plain *log.Logger (packages pool and wsgi, and
// Python worker output) chooses a line's level with a prefix at the start
// of the message: "debug: ", "warning: " or "error: "; a message without
// one is INFO. The Writer strips the prefix and stamps the line. Lines below
// the Writer's level are dropped. A message of several lines (a traceback
// carried in an error) is stamped line by line, all with the message's level.
package errlog

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"sync"
	"time"
)

// Level is the severity of a line.
type Level int8

// The levels, least severe first.
const (
	Debug Level = iota
	Info
	Warning
	Error
)

// The prefixes that give a message printed through a plain *log.Logger its
// level (no prefix: Info).
const (
	DebugPrefix   = "debug: "
	WarningPrefix = "warning: "
	ErrorPrefix   = "error: "
)

// TimeFormat is the time stamp at the start of every line.
const TimeFormat = "2006-01-02 15:04:05.000"

var names = [...]string{Debug: "DEBUG", Info: "INFO", Warning: "WARNING", Error: "ERROR"}

func (l Level) String() string {
	if l >= Debug && int(l) < len(names) {
		return names[l]
	}
	return fmt.Sprintf("Level(%d)", int(l))
}

// ParseLevel reads a --log-level value: debug, info, warning (or warn) or
// error, in any case.
func ParseLevel(s string) (Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return Debug, nil
	case "info":
		return Info, nil
	case "warning", "warn":
		return Warning, nil
	case "error":
		return Error, nil
	}
	return Info, fmt.Errorf("unknown log level %q: want debug, info, warning or error", s)
}

// Writer stamps each message written to it and writes it to its output.
// Each Write is one message (as *log.Logger writes them); a missing final
// newline is added. It is safe for concurrent use.
type Writer struct {
	mu    sync.Mutex
	out   io.Writer
	level Level
	now   func() time.Time
	buf   []byte
}

// New returns a Writer to out that drops lines below level.
func New(out io.Writer, level Level) *Writer {
	return &Writer{out: out, level: level, now: time.Now}
}

// Logger returns a *log.Logger writing to w, without a prefix or flags of
// its own (w stamps the lines).
func (w *Writer) Logger() *log.Logger { return log.New(w, "", 0) }

// Level returns the least severe level w writes.
func (w *Writer) Level() Level { return w.level }

// Enabled reports whether a line of level l is written.
func (w *Writer) Enabled(l Level) bool { return l >= w.level }

// Output returns the writer w stamps lines for.
func (w *Writer) Output() io.Writer { return w.out }

// Split returns a message's level and the message without its level
// prefix.
func Split(msg []byte) (Level, []byte) {
	switch {
	case bytes.HasPrefix(msg, []byte(ErrorPrefix)):
		return Error, msg[len(ErrorPrefix):]
	case bytes.HasPrefix(msg, []byte(WarningPrefix)):
		return Warning, msg[len(WarningPrefix):]
	case bytes.HasPrefix(msg, []byte(DebugPrefix)):
		return Debug, msg[len(DebugPrefix):]
	}
	return Info, msg
}

// Write writes the message p, its level given by its prefix.
func (w *Writer) Write(p []byte) (int, error) {
	level, msg := Split(p)
	return len(p), w.write(level, msg)
}

// Log writes msg at level l (a prefix in msg is kept as text).
func (w *Writer) Log(l Level, msg string) error { return w.write(l, []byte(msg)) }

// Logf writes a formatted message at level l.
func (w *Writer) Logf(l Level, format string, args ...any) error {
	if !w.Enabled(l) {
		return nil
	}
	return w.write(l, []byte(fmt.Sprintf(format, args...)))
}

func (w *Writer) write(level Level, msg []byte) error {
	if level < w.level {
		return nil
	}
	msg = bytes.TrimSuffix(msg, []byte("\n"))
	w.mu.Lock()
	defer w.mu.Unlock()
	stamp := w.now().Format(TimeFormat)
	name := level.String()
	buf := w.buf[:0]
	for {
		line, rest, more := bytes.Cut(msg, []byte("\n"))
		buf = append(buf, stamp...)
		buf = append(buf, " ["...)
		buf = append(buf, name...)
		buf = append(buf, "] "...)
		buf = append(buf, bytes.TrimSuffix(line, []byte("\r"))...)
		buf = append(buf, '\n')
		if !more {
			break
		}
		msg = rest
	}
	_, err := w.out.Write(buf)
	if cap(buf) <= 64<<10 {
		w.buf = buf
	}
	return err
}

// File is a log file that can be reopened at its path, for logrotate's
// rename-then-signal rotation: after Reopen, writes go to a file created at
// the path, and the renamed one is closed. It is safe for concurrent use.
type File struct {
	path string
	mu   sync.RWMutex
	f    *os.File
}

// OpenFile opens (creating it if need be) the log file at path for
// appending.
func OpenFile(path string) (*File, error) {
	f, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	return &File{path: path, f: f}, nil
}

func openAppend(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
}

// Path returns the file's path.
func (f *File) Path() string { return f.path }

// Write appends p to the file now open.
func (f *File) Write(p []byte) (int, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.f.Write(p)
}

// Reopen opens the path anew and closes the file written so far. If the
// path cannot be opened, the old file stays in use and the error is
// returned.
func (f *File) Reopen() error {
	nf, err := openAppend(f.path)
	if err != nil {
		return err
	}
	f.mu.Lock()
	old := f.f
	f.f = nf
	f.mu.Unlock()
	return old.Close()
}

// Close closes the file.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.f.Close()
}
