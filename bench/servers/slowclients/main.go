// Command slowclients holds many idle, slow HTTP connections open against a
// server, for the slow-client workload of the server benchmark
// (bench/servers). Each connection sends the start of a request, one header
// byte at a time every -min..-max (random), and never finishes it. When the
// server closes a connection (a header timeout, a 408, a reset), it is opened
// again, so the server has -n slow clients on it for the whole run.
//
// It prints "ready N" on stdout once all -n connections are established, then
// a one-line JSON summary when it stops (after -duration, or on SIGTERM or
// SIGINT).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type summary struct {
	Target       int     `json:"target"`
	Ready        bool    `json:"ready"`
	ReadyAfterS  float64 `json:"ready_after_s"`
	Connects     int64   `json:"connects"`
	Reconnects   int64   `json:"reconnects"`
	DialErrors   int64   `json:"dial_errors"`
	BytesSent    int64   `json:"bytes_sent"`
	MinOpen      int64   `json:"min_open_after_ready"`
	AvgOpen      float64 `json:"avg_open_after_ready"`
	OpenAtEnd    int64   `json:"open_at_end"`
	DurationS    float64 `json:"duration_s"`
	ServerCloses int64   `json:"server_closes"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8000", "server address HOST:PORT")
	n := flag.Int("n", 500, "slow connections to hold open")
	minGap := flag.Duration("min", 2*time.Second, "shortest gap between two bytes")
	maxGap := flag.Duration("max", 3*time.Second, "longest gap between two bytes")
	duration := flag.Duration("duration", 60*time.Second, "stop after this long (an upper bound; SIGTERM stops earlier)")
	readyTimeout := flag.Duration("ready-timeout", 15*time.Second, "give up waiting for all connections after this long")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		cancel()
	}()

	var open, connects, dialErrors, bytesSent, serverCloses atomic.Int64
	start := time.Now()
	prefix := []byte("GET / HTTP/1.1\r\nHost: " + *addr + "\r\nUser-Agent: slowclients\r\nX-Slow: ")

	// hold keeps one slow connection open until ctx ends, reopening it
	// whenever the server drops it. first is closed after the first connect.
	hold := func(first chan<- struct{}) {
		signalled := false
		for ctx.Err() == nil {
			d := net.Dialer{Timeout: 3 * time.Second}
			c, err := d.DialContext(ctx, "tcp", *addr)
			if err != nil {
				dialErrors.Add(1)
				sleep(ctx, 200*time.Millisecond)
				continue
			}
			connects.Add(1)
			open.Add(1)
			if !signalled {
				close(first)
				signalled = true
			}
			// The server closing the connection (or answering anything,
			// e.g. 408) shows up as a read returning.
			closed := make(chan struct{})
			go func() {
				buf := make([]byte, 4096)
				for {
					if _, err := c.Read(buf); err != nil {
						close(closed)
						return
					}
				}
			}()
			i := 0
			// A random phase, so the connections don't send in lockstep.
			wait := time.Duration(rand.Int64N(int64(*maxGap)))
		send:
			for {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					break send
				case <-closed:
					t.Stop()
					serverCloses.Add(1)
					break send
				case <-t.C:
				}
				b := byte('a')
				if i < len(prefix) {
					b = prefix[i]
				}
				c.SetWriteDeadline(time.Now().Add(time.Second))
				if _, err := c.Write([]byte{b}); err != nil {
					serverCloses.Add(1)
					break send
				}
				bytesSent.Add(1)
				i++
				wait = *minGap + time.Duration(rand.Int64N(int64(*maxGap-*minGap)+1))
			}
			c.Close()
			open.Add(-1)
			<-closed
		}
	}

	var wg sync.WaitGroup
	firsts := make([]chan struct{}, *n)
	for i := range firsts {
		firsts[i] = make(chan struct{})
		wg.Add(1)
		go func(ch chan struct{}) {
			defer wg.Done()
			hold(ch)
		}(firsts[i])
	}

	s := summary{Target: *n, MinOpen: -1}
	readyDeadline := time.After(*readyTimeout)
	for _, ch := range firsts {
		select {
		case <-ch:
			continue
		case <-ctx.Done():
		case <-readyDeadline:
		}
		break
	}
	if ctx.Err() == nil && open.Load() >= int64(*n) {
		s.Ready = true
	}
	s.ReadyAfterS = time.Since(start).Seconds()
	fmt.Printf("ready %d\n", open.Load())
	os.Stdout.Sync()

	// Sample the number of open slow connections until the end.
	var samples, sum int64
	tick := time.NewTicker(100 * time.Millisecond)
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
			o := open.Load()
			if s.MinOpen < 0 || o < s.MinOpen {
				s.MinOpen = o
			}
			sum += o
			samples++
		}
	}
	tick.Stop()
	s.OpenAtEnd = open.Load()
	wg.Wait()
	if samples > 0 {
		s.AvgOpen = float64(sum) / float64(samples)
	}
	s.Connects = connects.Load()
	s.Reconnects = s.Connects - int64(*n)
	if s.Reconnects < 0 {
		s.Reconnects = 0
	}
	s.DialErrors = dialErrors.Load()
	s.BytesSent = bytesSent.Load()
	s.ServerCloses = serverCloses.Load()
	s.DurationS = time.Since(start).Seconds()
	out, _ := json.Marshal(s)
	fmt.Println(string(out))
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
