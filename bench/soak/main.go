// Command soak runs mixed traffic against an in-process hornbeam server for
// a while, killing a random worker now and then, and reports requests,
// errors by cause and memory over time. It is not part of the test suite:
//
//	go run ./bench/soak -duration 10m
//
// Memory that grows from one interval to the next, with the same traffic,
// is a leak.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hornbeam-go/hornbeam"
)

func main() {
	duration := flag.Duration("duration", 10*time.Minute, "how long to run")
	every := flag.Duration("report", 30*time.Second, "report interval")
	clients := flag.Int("clients", 16, "concurrent clients")
	kill := flag.Duration("kill-every", 5*time.Second, "SIGKILL a random worker this often (0: never)")
	python := flag.String("python", "/usr/bin/python3", "interpreter")
	flag.Parse()

	_, file, _ := callerDir()
	ctx := context.Background()
	srv, err := hornbeam.Start(ctx, "app:application", hornbeam.Options{
		Bind: []string{"127.0.0.1:0"}, Workers: 2, Python: *python, PythonPath: []string{file},
		MaxRequests: 5000, MaxRequestsJitter: 500, Timeout: 10 * time.Second, ErrorLog: errorLog(),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
	base := "http://" + srv.Addrs()[0].String()

	var mu sync.Mutex
	counts := map[string]int{}
	note := func(k string) { mu.Lock(); counts[k]++; mu.Unlock() }
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < *clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 15 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				note(request(client, base))
			}
		}()
	}
	if *kill > 0 {
		go func() {
			t := time.NewTicker(*kill)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
				}
				ws := srv.Stats().Workers
				if len(ws) > 0 {
					syscall.Kill(ws[rand.IntN(len(ws))].PID, syscall.SIGKILL)
					note("(workers killed)")
				}
			}
		}()
	}

	fmt.Printf("%-8s %10s %8s  %-40s %10s %10s %10s %6s\n", "time", "requests", "req/s", "errors by cause", "go heap", "go rss", "workers", "gorout")
	start := time.Now()
	var last int
	var firstHeap, lastHeap uint64
	for elapsed := time.Duration(0); elapsed < *duration; {
		time.Sleep(min(*every, *duration-elapsed))
		elapsed = time.Since(start)
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		mu.Lock()
		total, errs := 0, []string{}
		for k, v := range counts {
			if k == "ok" {
				total += v
				continue
			}
			if !strings.HasPrefix(k, "(") {
				total += v
			}
			errs = append(errs, fmt.Sprintf("%s=%d", k, v))
		}
		mu.Unlock()
		sort.Strings(errs)
		var wrss int64
		for _, w := range srv.Stats().Workers {
			wrss += w.RSSBytes
		}
		if firstHeap == 0 {
			firstHeap = ms.HeapInuse
		}
		lastHeap = ms.HeapInuse
		fmt.Printf("%-8s %10d %8.0f  %-40s %9.1fM %9.1fM %9.1fM %6d\n",
			elapsed.Round(time.Second), total, float64(total-last)/every.Seconds(), strings.Join(errs, " "),
			float64(ms.HeapInuse)/(1<<20), float64(selfRSS())/(1<<20), float64(wrss)/(1<<20), runtime.NumGoroutine())
		last = total
	}
	close(stop)
	wg.Wait()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	srv.Stop(sctx)
	fmt.Printf("go heap in use: %.1f MiB at the first report, %.1f MiB at the last\n", float64(firstHeap)/(1<<20), float64(lastHeap)/(1<<20))
}

// request makes one request of a random kind and names its outcome.
func request(c *http.Client, base string) string {
	var resp *http.Response
	var err error
	switch r := rand.IntN(100); {
	case r < 50:
		resp, err = c.Get(base + "/")
	case r < 65:
		resp, err = c.Get(base + "/big")
	case r < 75:
		resp, err = c.Post(base+"/post", "application/octet-stream", bytes.NewReader(make([]byte, 100<<10)))
	case r < 85:
		resp, err = c.Get(base + "/stream")
	default:
		resp, err = c.Get(base + "/state")
	}
	if err != nil {
		return "conn"
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return "cut"
		}
		return "read"
	}
	if resp.StatusCode != 200 {
		return strconv.Itoa(resp.StatusCode)
	}
	return "ok"
}

func selfRSS() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

func callerDir() (string, string, error) {
	_, file, _, _ := runtime.Caller(0)
	return file, filepath.Dir(file), nil
}

// errorLog is the server's error log: $SOAK_ERROR_LOG, or nowhere.
func errorLog() io.Writer {
	if p := os.Getenv("SOAK_ERROR_LOG"); p != "" {
		if f, err := os.Create(p); err == nil {
			return f
		}
	}
	return io.Discard
}
