// Package top implements `hornbeam top`: a live view of a running
// hornbeam server's worker pool, read from the JSON stats endpoint that
// the server serves with --stats-bind.
//
// [Main] is the command's entry point. On a terminal it draws a screen
// refreshed every --interval (raw mode, on the alternate screen; q or
// Ctrl-C quits and restores the terminal); when stdout is not
// a terminal it prints a plain-text snapshot per interval instead; with
// --once it prints one snapshot and exits.
//
// What a screen shows is computed by pure functions, [Summarize] and
// [Render], from two polls and the time between them.
package top

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/charmbracelet/x/term"
	"github.com/spf13/pflag"

	"github.com/hornbeam-go/hornbeam"
)

// DefaultAddr is the stats address watched when none is given.
const DefaultAddr = "127.0.0.1:9000"

// fetchTimeout bounds one poll of the stats endpoint.
const fetchTimeout = 5 * time.Second

const usage = `usage: hornbeam top [--once] [--interval DUR] [ADDR]

Watch a running hornbeam server's worker pool live, read from its stats
endpoint. ADDR is the address the server was started with as
--stats-bind: HOST:PORT, http://HOST:PORT or unix:/path
(default ` + DefaultAddr + `). On a terminal, q or Ctrl-C quits.

flags:
`

// Main runs `hornbeam top` with args, the command-line arguments that
// follow "top", and returns the process exit code: 0 on success (also when
// the user quits with q or Ctrl-C), 1 when the stats endpoint cannot be
// read on the first poll (with a one-line hint on stderr), 2 for bad
// arguments. --help prints the usage on stdout.
//
// Flags: --once (print one snapshot as plain text and exit), --interval
// DUR (time between polls; a Go duration or a number of seconds; default
// 1s), --stats ADDR (same as the positional ADDR).
//
// stdin is read for keys when it is a terminal (otherwise /dev/tty is
// used when it can be opened); the interactive screen is drawn only when
// stdout is a terminal (*os.File), else plain text is written. The
// terminal is never queried (for its colours or anything else), so
// nothing waits on a terminal that does not answer.
// SIGINT and SIGTERM end it cleanly.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, args, stdin, stdout, stderr)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("hornbeam top", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { // --help: to stdout
		fs.SetOutput(stdout)
		fmt.Fprint(stdout, usage)
		fs.PrintDefaults()
	}
	once := fs.Bool("once", false, "print one snapshot as plain text and exit")
	interval := time.Second
	fs.Var(durationValue{&interval}, "interval", "time between polls: a duration (500ms, 2s) or seconds")
	statsFlag := fs.String("stats", "", "stats address, as given to the server's --stats-bind (same as ADDR)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "hornbeam top: %v; see hornbeam top --help\n", err)
		return 2
	}
	addr := *statsFlag
	switch rest := fs.Args(); {
	case len(rest) > 1:
		fmt.Fprintf(stderr, "hornbeam top: one ADDR expected, got %q; see hornbeam top --help\n", rest)
		return 2
	case len(rest) == 1 && addr != "" && rest[0] != addr:
		fmt.Fprintf(stderr, "hornbeam top: both --stats %s and ADDR %s given; give one\n", addr, rest[0])
		return 2
	case len(rest) == 1:
		addr = rest[0]
	}
	if addr == "" {
		addr = DefaultAddr
	}
	if interval <= 0 {
		fmt.Fprintln(stderr, "hornbeam top: --interval must be positive")
		return 2
	}
	src, err := NewSource(addr)
	if err != nil {
		fmt.Fprintf(stderr, "hornbeam top: %v\n", err)
		return 2
	}
	defer src.Close()

	first, err := src.Fetch(ctx)
	firstAt := time.Now()
	if err != nil {
		fmt.Fprintf(stderr, "hornbeam top: %s\n", src.Explain(err))
		return 1
	}
	if *once {
		if _, err := io.WriteString(stdout, Render(nil, first, 0)); err != nil {
			return 1
		}
		return 0
	}
	if f, ok := stdout.(*os.File); ok && term.IsTerminal(f.Fd()) {
		return runTUI(ctx, src, first, firstAt, interval, stdin, f, stderr)
	}
	return runPlain(ctx, src, first, firstAt, interval, stdout, stderr)
}

// runPlain prints a timestamped plain-text snapshot every interval until
// ctx ends. A failed poll is reported on stderr and retried.
func runPlain(ctx context.Context, src *Source, st hornbeam.Stats, at time.Time, interval time.Duration, stdout, stderr io.Writer) int {
	var prev *hornbeam.Stats
	var prevAt time.Time
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		elapsed := pollElapsed(prev, st, prevAt, at)
		out := fmt.Sprintf("--- %s  %s\n%s\n", at.Format("2006-01-02 15:04:05"), src, Render(prev, st, elapsed))
		if _, err := io.WriteString(stdout, out); err != nil {
			return 0 // the reader went away
		}
		p := st
		prev, prevAt = &p, at
		for {
			select {
			case <-ctx.Done():
				return 0
			case <-t.C:
			}
			next, err := src.Fetch(ctx)
			if ctx.Err() != nil {
				return 0
			}
			if err != nil {
				fmt.Fprintf(stderr, "hornbeam top: %s %s\n", time.Now().Format("15:04:05"), src.Explain(err))
				continue
			}
			st, at = next, time.Now()
			break
		}
	}
}

// pollElapsed is the time between two polls: the difference of the
// server's uptimes when it is positive (it excludes the network's delays),
// else the difference of the local clock.
func pollElapsed(prev *hornbeam.Stats, cur hornbeam.Stats, prevAt, at time.Time) time.Duration {
	if prev == nil {
		return 0
	}
	if d := cur.UptimeSeconds - prev.UptimeSeconds; d > 0 {
		return time.Duration(d * float64(time.Second))
	}
	return at.Sub(prevAt)
}

// Source is a stats endpoint: where to GET the JSON and how to dial it.
type Source struct {
	// Addr is the address as the server's --stats-bind names it, for
	// messages.
	Addr   string
	url    string
	client *http.Client
	tr     *http.Transport
}

// NewSource parses a stats address: HOST:PORT (":PORT" and a bare PORT
// mean 127.0.0.1), http://HOST:PORT or https://HOST:PORT (with an
// optional path; /stats when none), or unix:/path for a unix socket.
func NewSource(addr string) (*Source, error) {
	d := &net.Dialer{Timeout: fetchTimeout}
	tr := &http.Transport{
		Proxy:                 nil, // a local admin endpoint: never through a proxy
		DialContext:           d.DialContext,
		MaxIdleConns:          1,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: fetchTimeout,
	}
	s := &Source{Addr: addr, tr: tr, client: &http.Client{Transport: tr, Timeout: fetchTimeout}}
	switch {
	case strings.HasPrefix(addr, "unix:"):
		path := strings.TrimPrefix(addr, "unix:")
		path = strings.TrimPrefix(path, "//") // unix:///path
		if path == "" {
			return nil, fmt.Errorf("stats address %q: want unix:/path/to/socket", addr)
		}
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		}
		s.url = "http://unix/stats"
	case strings.Contains(addr, "://"):
		u, err := url.Parse(addr)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("stats address %q: want HOST:PORT, http://HOST:PORT or unix:/path", addr)
		}
		if u.Path == "" || u.Path == "/" {
			u.Path = "/stats"
		}
		s.url = u.String()
		s.Addr = u.Host
	default:
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			if _, perr := strconv.ParseUint(addr, 10, 16); perr != nil {
				return nil, fmt.Errorf("stats address %q: want HOST:PORT, http://HOST:PORT or unix:/path", addr)
			}
			host, port = "", addr
		}
		if host == "" {
			host = "127.0.0.1"
		}
		s.Addr = net.JoinHostPort(host, port)
		s.url = "http://" + s.Addr + "/stats"
	}
	return s, nil
}

// String names the endpoint: its URL, or unix:/path for a socket.
func (s *Source) String() string {
	if strings.HasPrefix(s.Addr, "unix:") {
		return s.Addr
	}
	return s.url
}

// Close releases the idle connection to the endpoint.
func (s *Source) Close() { s.tr.CloseIdleConnections() }

// Fetch reads one snapshot.
func (s *Source) Fetch(ctx context.Context) (hornbeam.Stats, error) {
	var st hornbeam.Stats
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return st, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return st, &reachError{err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return st, &answerError{fmt.Sprintf("answered %s", resp.Status)}
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&st); err != nil {
		return st, &answerError{fmt.Sprintf("sent something that is not hornbeam stats (%v)", err)}
	}
	if st.Status == nil && st.Workers == nil {
		return st, &answerError{"sent JSON without hornbeam's stats fields"}
	}
	return st, nil
}

// reachError: the endpoint could not be connected to or did not answer.
type reachError struct{ err error }

func (e *reachError) Error() string { return e.err.Error() }
func (e *reachError) Unwrap() error { return e.err }

// answerError: something answered, but not hornbeam's stats.
type answerError struct{ msg string }

func (e *answerError) Error() string { return e.msg }

// Explain turns a Fetch error into one line saying what went wrong and
// what to do about it.
func (s *Source) Explain(err error) string {
	var re *reachError
	var ae *answerError
	switch {
	case errors.As(err, &re):
		cause := re.err
		var ue *url.Error
		if errors.As(cause, &ue) {
			cause = ue.Err
		}
		return fmt.Sprintf("cannot reach the stats endpoint %s (%v); start hornbeam with --stats-bind %s, or give the address it uses: hornbeam top ADDR", s, cause, s.Addr)
	case errors.As(err, &ae):
		return fmt.Sprintf("%s %s; is that the server's --stats-bind address (not its --bind)?", s, ae.msg)
	}
	return fmt.Sprintf("reading %s: %v", s, err)
}

// durationValue is a flag value: a Go duration ("500ms", "2s") or a bare
// number of seconds ("0.5", "2"), as elsewhere in hornbeam's flags.
type durationValue struct{ d *time.Duration }

func (v durationValue) String() string { return v.d.String() }
func (v durationValue) Type() string   { return "duration" }
func (v durationValue) Set(s string) error {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		*v.d = time.Duration(f * float64(time.Second))
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration like 1s, 500ms or a number of seconds")
	}
	*v.d = d
	return nil
}
