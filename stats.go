package hornbeam

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hornbeam-go/hornbeam/pool"
	"github.com/hornbeam-go/hornbeam/pymarshal"
)

// latencyBuckets are the upper bounds, in seconds, of the latency histogram.
var latencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// metrics are the HTTP-side counters, updated once per request.
type metrics struct {
	started  time.Time
	requests atomic.Uint64
	classes  [6]atomic.Uint64 // index 0: cut connections; 1..5: 1xx..5xx
	buckets  []atomic.Uint64  // cumulative at read time; one per bound, plus +Inf
	sumMicro atomic.Uint64
}

func newMetrics() *metrics {
	return &metrics{started: time.Now(), buckets: make([]atomic.Uint64, len(latencyBuckets)+1)}
}

func (m *metrics) observe(status int, d time.Duration) {
	m.requests.Add(1)
	c := status / 100
	if c < 1 || c > 5 {
		c = 0
	}
	m.classes[c].Add(1)
	sec := d.Seconds()
	i := sort.SearchFloat64s(latencyBuckets, sec)
	m.buckets[i].Add(1)
	m.sumMicro.Add(uint64(d.Microseconds()))
}

// Stats is a snapshot of a server: its pool, its traffic and its state.
type Stats struct {
	pool.Stats
	UptimeSeconds float64           `json:"uptime_seconds"`
	Requests      uint64            `json:"requests"`
	Status        map[string]uint64 `json:"status"` // "2xx" ... and "cut"
	Latency       Histogram         `json:"latency"`
	StateKeys     int               `json:"state_keys"`
	StateBytes    int64             `json:"state_bytes"`
}

// Histogram is a cumulative latency histogram, in seconds.
type Histogram struct {
	Buckets []Bucket `json:"buckets"`
	Count   uint64   `json:"count"`
	Sum     float64  `json:"sum"`
}

// Bucket counts the requests that took at most LE seconds.
type Bucket struct {
	LE    float64 `json:"le"` // the +Inf bucket is Histogram.Count
	Count uint64  `json:"count"`
}

// Quantile estimates the q-quantile (0..1) from the histogram, returning the
// upper bound of the bucket it falls in.
func (h Histogram) Quantile(q float64) float64 {
	if h.Count == 0 {
		return 0
	}
	want := uint64(q*float64(h.Count) + 0.5)
	for _, b := range h.Buckets {
		if b.Count >= want {
			return b.LE
		}
	}
	return latencyBuckets[len(latencyBuckets)-1]
}

// Stats returns a snapshot of the server.
func (s *Server) Stats() Stats {
	st := Stats{Stats: s.pool.Stats(), Status: map[string]uint64{}}
	m := s.metrics
	st.UptimeSeconds = time.Since(m.started).Seconds()
	st.Requests = m.requests.Load()
	for i := range m.classes {
		name := fmt.Sprintf("%dxx", i)
		if i == 0 {
			name = "cut"
		}
		st.Status[name] = m.classes[i].Load()
	}
	var cum uint64
	for i, le := range latencyBuckets {
		cum += m.buckets[i].Load()
		st.Latency.Buckets = append(st.Latency.Buckets, Bucket{LE: le, Count: cum})
	}
	cum += m.buckets[len(latencyBuckets)].Load()
	st.Latency.Count = cum
	st.Latency.Sum = float64(m.sumMicro.Load()) / 1e6
	ss := s.store.Stats()
	st.StateKeys, st.StateBytes = ss.Keys, ss.Bytes
	return st
}

// statsForPython is Stats as plain data for pool_stats().
func (s *Server) statsForPython() any {
	b, _ := json.Marshal(s.Stats())
	var v any
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.UseNumber()
	d.Decode(&v)
	return jsonToPy(v)
}

func jsonToPy(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case []any:
		out := make(pymarshal.List, len(x))
		for i, e := range x {
			out[i] = jsonToPy(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonToPy(e)
		}
		return out
	}
	return v
}

func (s *Server) startStats() error {
	ln, err := Listen(s.opts.StatsBind)
	if err != nil {
		return fmt.Errorf("--stats-bind: %w", err)
	}
	s.statsLn = ln
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(s.Stats())
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		writeMetrics(w, s.Stats())
	})
	// The Go profiler, as net/http/pprof serves it, for `go tool pprof
	// http://ADDR/debug/pprof/profile`: the stats address is an operator's.
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	s.statsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go s.statsSrv.Serve(ln)
	return nil
}

// writeMetrics writes st in the Prometheus text exposition format.
func writeMetrics(w io.Writer, st Stats) {
	p := func(name, typ, help string) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	p("hornbeam_requests_total", "counter", "Requests handled, by status class.")
	classes := make([]string, 0, len(st.Status))
	for k := range st.Status {
		classes = append(classes, k)
	}
	sort.Strings(classes)
	for _, k := range classes {
		fmt.Fprintf(w, "hornbeam_requests_total{class=%q} %d\n", k, st.Status[k])
	}
	p("hornbeam_request_duration_seconds", "histogram", "Time from request arrival to response end.")
	for _, b := range st.Latency.Buckets {
		fmt.Fprintf(w, "hornbeam_request_duration_seconds_bucket{le=\"%g\"} %d\n", b.LE, b.Count)
	}
	fmt.Fprintf(w, "hornbeam_request_duration_seconds_bucket{le=\"+Inf\"} %d\n", st.Latency.Count)
	fmt.Fprintf(w, "hornbeam_request_duration_seconds_sum %g\nhornbeam_request_duration_seconds_count %d\n", st.Latency.Sum, st.Latency.Count)
	p("hornbeam_queue_depth", "gauge", "Requests waiting for a free worker.")
	fmt.Fprintf(w, "hornbeam_queue_depth %d\n", st.QueueDepth)
	p("hornbeam_workers", "gauge", "Live worker processes.")
	fmt.Fprintf(w, "hornbeam_workers %d\n", len(st.Workers))
	p("hornbeam_worker_restarts_total", "counter", "Workers replaced after dying unexpectedly.")
	fmt.Fprintf(w, "hornbeam_worker_restarts_total %d\n", st.Restarts)
	p("hornbeam_worker_busy", "gauge", "1 when the worker holds a request.")
	for _, wk := range st.Workers {
		busy := 0
		if wk.State == "busy" {
			busy = 1
		}
		fmt.Fprintf(w, "hornbeam_worker_busy{pid=\"%d\",slot=\"%d\"} %d\n", wk.PID, wk.Slot, busy)
	}
	p("hornbeam_worker_requests_total", "counter", "Requests served by the worker.")
	for _, wk := range st.Workers {
		fmt.Fprintf(w, "hornbeam_worker_requests_total{pid=\"%d\",slot=\"%d\"} %d\n", wk.PID, wk.Slot, wk.Requests)
	}
	p("hornbeam_worker_rss_bytes", "gauge", "Resident memory of the worker.")
	for _, wk := range st.Workers {
		fmt.Fprintf(w, "hornbeam_worker_rss_bytes{pid=\"%d\",slot=\"%d\"} %d\n", wk.PID, wk.Slot, wk.RSSBytes)
	}
	p("hornbeam_worker_current_request_seconds", "gauge", "Age of the worker's oldest request in flight.")
	for _, wk := range st.Workers {
		fmt.Fprintf(w, "hornbeam_worker_current_request_seconds{pid=\"%d\",slot=\"%d\"} %g\n", wk.PID, wk.Slot, wk.CurrentAgeSeconds)
	}
	p("hornbeam_state_keys", "gauge", "Keys in the shared state.")
	fmt.Fprintf(w, "hornbeam_state_keys %d\n", st.StateKeys)
	p("hornbeam_state_bytes", "gauge", "Approximate bytes held by the shared state.")
	fmt.Fprintf(w, "hornbeam_state_bytes %d\n", st.StateBytes)
}
