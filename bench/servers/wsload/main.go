// Command wsload is the WebSocket load generator of the ASGI benchmark
// (bench/servers/asgi.py): loopback only, github.com/coder/websocket.
//
// Echo mode: -c connections, each in a loop sends one text message of -size
// bytes and waits for its echo (closed loop, like wrk), for -warmup (not
// counted) and then -d. Prints one JSON line: messages echoed in the
// measured window, messages/s, latency percentiles (send to echo received),
// errors.
//
//	wsload -mode echo -url ws://127.0.0.1:8000/ws -c 64 -warmup 2s -d 5s
//
// Idle mode: opens -c WebSockets (at most -dial-concurrency handshakes at a
// time, from -sources loopback source addresses 127.0.0.1, 127.0.0.2, ...
// so that ephemeral ports do not run short), prints {"event":"opened",...},
// and holds them open, reading (so the server's pings are answered), until
// a line or EOF on stdin or -max. Then it counts the sockets the server
// closed meanwhile, sends one message on -check of them and waits for the
// echo, prints the final JSON line and closes them all.
//
//	wsload -mode idle -url ws://127.0.0.1:8000/ws -c 10000 -sources 4
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

func main() {
	mode := flag.String("mode", "echo", "echo or idle")
	url := flag.String("url", "", "ws://127.0.0.1:PORT/PATH")
	conns := flag.Int("c", 64, "connections")
	warmup := flag.Duration("warmup", 2*time.Second, "echo: warm-up, not counted")
	dur := flag.Duration("d", 5*time.Second, "echo: measured window")
	size := flag.Int("size", 32, "echo: message size in bytes (text)")
	sources := flag.Int("sources", 1, "loopback source addresses 127.0.0.1..127.0.0.N")
	dialConc := flag.Int("dial-concurrency", 64, "handshakes in flight at most")
	check := flag.Int("check", 100, "idle: sockets checked with one echo at the end")
	maxHold := flag.Duration("max", 10*time.Minute, "idle: give up holding after this")
	flag.Parse()
	if *url == "" {
		fmt.Fprintln(os.Stderr, "wsload: -url is required")
		os.Exit(2)
	}
	raiseNofile()
	client := newClient(*sources)
	var out map[string]any
	switch *mode {
	case "echo":
		out = echo(client, *url, *conns, *warmup, *dur, *size, *dialConc)
	case "idle":
		out = idle(client, *url, *conns, *dialConc, *check, *maxHold)
	default:
		fmt.Fprintln(os.Stderr, "wsload: -mode is echo or idle")
		os.Exit(2)
	}
	emit(out)
}

func emit(v map[string]any) {
	b, _ := json.Marshal(v)
	os.Stdout.Write(append(b, '\n'))
}

func raiseNofile() {
	var r syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r) == nil && r.Cur < r.Max {
		r.Cur = r.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r)
	}
}

// newClient dials from 127.0.0.1 .. 127.0.0.n in turn. IP_BIND_ADDRESS_NO_PORT
// lets the kernel pick the source port at connect time (per 4-tuple) rather
// than at bind time.
func newClient(n int) *http.Client {
	var next atomic.Uint64
	d := &net.Dialer{
		Timeout: 30 * time.Second,
		Control: func(network, address string, c syscall.RawConn) error {
			var serr error
			c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, 24 /* IP_BIND_ADDRESS_NO_PORT */, 1)
			})
			return serr
		},
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dd := *d
			if n > 1 {
				i := next.Add(1) % uint64(n)
				dd.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i))}
			}
			return dd.DialContext(ctx, network, addr)
		},
		MaxIdleConns:      -1,
		DisableKeepAlives: true,
		Proxy:             nil,
	}
	return &http.Client{Transport: tr}
}

type dialResult struct {
	conns  []*websocket.Conn
	failed int
	errs   []string
	took   time.Duration
}

func dialAll(client *http.Client, url string, n, conc int) dialResult {
	res := dialResult{conns: make([]*websocket.Conn, n)}
	sem := make(chan struct{}, conc)
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{
				HTTPClient:      client,
				CompressionMode: websocket.CompressionDisabled,
			})
			if err != nil {
				mu.Lock()
				res.failed++
				if len(res.errs) < 5 {
					res.errs = append(res.errs, err.Error())
				}
				mu.Unlock()
				return
			}
			c.SetReadLimit(1 << 20)
			res.conns[i] = c
		}(i)
	}
	wg.Wait()
	res.took = time.Since(start)
	return res
}

func pct(sorted []int32, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)) * p / 100)
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return float64(sorted[i]) / 1000 // us -> ms
}

func echo(client *http.Client, url string, n int, warmup, dur time.Duration, size, conc int) map[string]any {
	dr := dialAll(client, url, n, conc)
	out := map[string]any{"mode": "echo", "conns": n, "opened": n - dr.failed, "dial_failed": dr.failed,
		"dial_s": dr.took.Seconds(), "size": size, "warmup_s": warmup.Seconds(), "duration_s": dur.Seconds()}
	if dr.failed > 0 {
		out["dial_errors"] = dr.errs
	}
	start := time.Now()
	measureFrom := start.Add(warmup)
	end := measureFrom.Add(dur)
	lats := make([][]int32, n)
	var errCount atomic.Int64
	var errMu sync.Mutex
	var errSample []string
	var wg sync.WaitGroup
	for i, c := range dr.conns {
		if c == nil {
			continue
		}
		wg.Add(1)
		go func(i int, c *websocket.Conn) {
			defer wg.Done()
			ctx, cancel := context.WithDeadline(context.Background(), end.Add(5*time.Second))
			defer cancel()
			msg := bytes.Repeat([]byte("x"), size)
			var seq uint64
			mine := make([]int32, 0, 4096)
			for {
				now := time.Now()
				if !now.Before(end) {
					break
				}
				seq++
				copy(msg, fmt.Sprintf("%d:%d:", i, seq))
				t0 := time.Now()
				err := c.Write(ctx, websocket.MessageText, msg)
				var typ websocket.MessageType
				var got []byte
				if err == nil {
					typ, got, err = c.Read(ctx)
				}
				if err == nil && (typ != websocket.MessageText || !bytes.Equal(got, msg)) {
					err = fmt.Errorf("echo mismatch: %q", got)
				}
				if err != nil {
					errCount.Add(1)
					errMu.Lock()
					if len(errSample) < 5 {
						errSample = append(errSample, err.Error())
					}
					errMu.Unlock()
					break
				}
				if t0.After(measureFrom) {
					us := time.Since(t0).Microseconds()
					if us > 1<<31-1 {
						us = 1<<31 - 1
					}
					mine = append(mine, int32(us))
				}
			}
			lats[i] = mine
			c.CloseNow()
		}(i, c)
	}
	wg.Wait()
	var all []int32
	for _, l := range lats {
		all = append(all, l...)
	}
	sort.Slice(all, func(a, b int) bool { return all[a] < all[b] })
	out["messages"] = len(all)
	out["msgs_per_s"] = float64(len(all)) / dur.Seconds()
	out["p50_ms"] = pct(all, 50)
	out["p90_ms"] = pct(all, 90)
	out["p99_ms"] = pct(all, 99)
	if len(all) > 0 {
		out["max_ms"] = float64(all[len(all)-1]) / 1000
	}
	out["errors"] = errCount.Load() + int64(dr.failed)
	if len(errSample) > 0 {
		out["error_sample"] = errSample
	}
	return out
}

func idle(client *http.Client, url string, n, conc, check int, maxHold time.Duration) map[string]any {
	dr := dialAll(client, url, n, conc)
	ev := map[string]any{"event": "opened", "open": n - dr.failed, "failed": dr.failed, "open_s": dr.took.Seconds()}
	if dr.failed > 0 {
		ev["dial_errors"] = dr.errs
	}
	emit(ev)
	// One reader per socket: answers the server's pings, notices closes,
	// delivers the echoes of the final check.
	type sock struct {
		c      *websocket.Conn
		msgs   chan []byte
		closed atomic.Bool
	}
	ctx, cancel := context.WithCancel(context.Background())
	socks := make([]*sock, 0, n)
	var closedCount atomic.Int64
	var closeMu sync.Mutex
	var closeSample []string
	for _, c := range dr.conns {
		if c == nil {
			continue
		}
		s := &sock{c: c, msgs: make(chan []byte, 1)}
		socks = append(socks, s)
		go func(s *sock) {
			for {
				_, b, err := s.c.Read(ctx)
				if err != nil {
					if ctx.Err() == nil {
						s.closed.Store(true)
						closedCount.Add(1)
						closeMu.Lock()
						if len(closeSample) < 5 {
							closeSample = append(closeSample, err.Error())
						}
						closeMu.Unlock()
					}
					return
				}
				select {
				case s.msgs <- b:
				default:
				}
			}
		}(s)
	}
	// Hold until told (a line or EOF on stdin) or -max.
	told := make(chan struct{})
	go func() {
		bufio.NewReader(os.Stdin).ReadString('\n')
		close(told)
	}()
	held := time.Now()
	select {
	case <-told:
	case <-time.After(maxHold):
	}
	out := map[string]any{"mode": "idle", "conns": n, "opened": n - dr.failed, "dial_failed": dr.failed,
		"open_s": dr.took.Seconds(), "held_s": time.Since(held).Seconds(),
		"closed_by_server": closedCount.Load()}
	if len(closeSample) > 0 {
		out["close_sample"] = closeSample
	}
	// Echo on up to `check` sockets spread over all of them.
	okN, tried := 0, 0
	var checkErrs []string
	if check > 0 && len(socks) > 0 {
		step := len(socks) / check
		if step < 1 {
			step = 1
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		for i := 0; i < len(socks) && tried < check; i += step {
			s := socks[i]
			tried++
			wg.Add(1)
			go func(i int, s *sock) {
				defer wg.Done()
				msg := []byte(fmt.Sprintf("check %d", i))
				wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
				defer wcancel()
				err := s.c.Write(wctx, websocket.MessageText, msg)
				if err == nil {
					select {
					case b := <-s.msgs:
						if !bytes.Equal(b, msg) {
							err = fmt.Errorf("echo mismatch: %q", b)
						}
					case <-wctx.Done():
						err = errors.New("no echo in 10s")
					}
				}
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					okN++
				} else if len(checkErrs) < 5 {
					checkErrs = append(checkErrs, err.Error())
				}
			}(i, s)
		}
		wg.Wait()
	}
	out["checked"] = tried
	out["check_ok"] = okN
	if len(checkErrs) > 0 {
		out["check_errors"] = checkErrs
	}
	cancel()
	for _, s := range socks {
		s.c.CloseNow()
	}
	return out
}
