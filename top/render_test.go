package top

import (
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hornbeam-go/hornbeam"
	"github.com/hornbeam-go/hornbeam/pool"
)

var bounds = []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1}

func hist(counts ...uint64) hornbeam.Histogram {
	h := hornbeam.Histogram{}
	for i, c := range counts[:len(bounds)] {
		h.Buckets = append(h.Buckets, hornbeam.Bucket{LE: bounds[i], Count: c})
	}
	h.Count = counts[len(bounds)] // the implicit +Inf bucket
	return h
}

// snapshots: 100 fast requests in the first 10 s, then 50 slower ones in
// the 2 s between the polls.
func snapshots() (prev, cur hornbeam.Stats) {
	prev = hornbeam.Stats{
		Stats: pool.Stats{Workers: []pool.WorkerStats{
			{Slot: 2, PID: 4243, State: "idle", Requests: 55, RSSBytes: 500 << 10},
			{Slot: 1, PID: 4242, State: "idle", Requests: 45, RSSBytes: 45 << 20},
		}},
		UptimeSeconds: 10, Requests: 100,
		Status:  map[string]uint64{"1xx": 0, "2xx": 98, "3xx": 0, "4xx": 2, "5xx": 0, "cut": 0},
		Latency: hist(100, 100, 100, 100, 100, 100, 100, 100),
	}
	cur = hornbeam.Stats{
		Stats: pool.Stats{
			Workers: []pool.WorkerStats{
				{Slot: 3, PID: 4244, State: "draining", Requests: 1, RSSBytes: 3 << 30},
				{Slot: 2, PID: 4243, State: "idle", Requests: 80, RSSBytes: 500 << 10, Restarts: 1},
				{Slot: 1, PID: 4242, State: "busy", Requests: 70, Inflight: 1, Current: "GET /sleep", CurrentAgeSeconds: 2.54, RSSBytes: 45<<20 + 300<<10},
			},
			QueueDepth: 3, Restarts: 1,
		},
		UptimeSeconds: 12, Requests: 150,
		Status:     map[string]uint64{"1xx": 0, "2xx": 140, "3xx": 1, "4xx": 2, "5xx": 7, "cut": 0},
		Latency:    hist(100, 100, 100, 130, 149, 149, 150, 150),
		StateKeys:  12,
		StateBytes: 3500,
	}
	return prev, cur
}

func TestSummarizeBetweenPolls(t *testing.T) {
	prev, cur := snapshots()
	s := Summarize(&prev, cur, 2*time.Second)
	if !s.Recent || !s.LatencyRecent {
		t.Fatalf("Recent=%v LatencyRecent=%v, want both true", s.Recent, s.LatencyRecent)
	}
	if s.ReqPerSec != 25 { // (150-100)/2s
		t.Errorf("ReqPerSec = %v, want 25", s.ReqPerSec)
	}
	// The 50 recent requests: 30 ≤50ms, 19 more ≤100ms, 1 ≤1s.
	if s.P50 != 0.05 || s.P99 != 1 {
		t.Errorf("recent p50, p99 = %v, %v; want 0.05, 1 (from the bucket deltas)", s.P50, s.P99)
	}
	if s.StatusDelta["2xx"] != 42 || s.StatusDelta["5xx"] != 7 || s.StatusDelta["4xx"] != 0 {
		t.Errorf("StatusDelta = %v", s.StatusDelta)
	}
	if s.Busy != 1 || s.Idle != 1 || s.Other != 1 {
		t.Errorf("busy/idle/other = %d/%d/%d, want 1/1/1", s.Busy, s.Idle, s.Other)
	}
	for i, w := range s.Workers {
		if w.Slot != i+1 {
			t.Fatalf("workers not ordered by slot: %+v", s.Workers)
		}
	}
}

func TestSummarizeFirstPollIsAllTime(t *testing.T) {
	_, cur := snapshots()
	s := Summarize(nil, cur, 0)
	if s.Recent || s.LatencyRecent {
		t.Fatalf("first poll marked recent")
	}
	if s.ReqPerSec != 12.5 { // 150 requests / 12 s of uptime
		t.Errorf("ReqPerSec = %v, want 12.5", s.ReqPerSec)
	}
	// All 150: 100 ≤1ms, so p50 ≤1ms; the 149th ≤100ms.
	if s.P50 != 0.001 || s.P99 != 0.1 {
		t.Errorf("all-time p50, p99 = %v, %v; want 0.001, 0.1", s.P50, s.P99)
	}
}

func TestSummarizeIdleWindowFallsBackToAllTime(t *testing.T) {
	_, cur := snapshots()
	next := cur
	next.UptimeSeconds++
	s := Summarize(&cur, next, time.Second)
	if !s.Recent || s.ReqPerSec != 0 {
		t.Errorf("Recent=%v ReqPerSec=%v, want true, 0", s.Recent, s.ReqPerSec)
	}
	if s.LatencyRecent || s.P50 != 0.001 || s.P99 != 0.1 {
		t.Errorf("LatencyRecent=%v p50=%v p99=%v, want the all-time false, 0.001, 0.1", s.LatencyRecent, s.P50, s.P99)
	}
	out := Render(&cur, next, time.Second)
	if !strings.Contains(out, "req/s 0.0 (last 1.0s)") || !strings.Contains(out, "latency p50 1ms  p99 100ms (since start)") {
		t.Errorf("idle window rendered as:\n%s", out)
	}
}

func TestSummarizeServerRestart(t *testing.T) {
	prev, cur := snapshots()
	restarted := prev
	restarted.Requests, restarted.UptimeSeconds = 3, 1
	restarted.Latency = hist(3, 3, 3, 3, 3, 3, 3, 3)
	s := Summarize(&cur, restarted, time.Second)
	if s.Recent || s.ReqPerSec != 3 {
		t.Errorf("after a restart: Recent=%v ReqPerSec=%v, want false and the all-time 3", s.Recent, s.ReqPerSec)
	}
}

func TestQuantileBeyondLastBound(t *testing.T) {
	h := hist(0, 0, 0, 0, 0, 0, 1, 10) // 9 of 10 took more than 1s
	if q := quantile(h.Buckets, h.Count, 0.5); !math.IsInf(q, 1) {
		t.Errorf("p50 = %v, want +Inf", q)
	}
	if q := quantile(h.Buckets, h.Count, 0.01); q != 1 {
		t.Errorf("p1 = %v, want 1", q)
	}
	_, cur := snapshots()
	cur.Latency = h
	if out := Render(nil, cur, 0); !strings.Contains(out, "p50 >1s") {
		t.Errorf("overflowing p50 not shown as >1s:\n%s", out)
	}
	if q := quantile(nil, 0, 0.5); q != 0 {
		t.Errorf("quantile of nothing = %v", q)
	}
}

func TestRender(t *testing.T) {
	prev, cur := snapshots()
	out := Render(&prev, cur, 2*time.Second)
	t.Logf("\n%s", out)
	for _, want := range []string{
		"req/s 25.0 (last 2.0s)",
		"requests 150",
		"latency p50 50ms  p99 1s (last 2.0s)",
		"status 2xx 140 (+42)  3xx 1 (+1)  4xx 2  5xx 7 (+7)  cut 0",
		"workers 3 (1 busy, 1 idle, 1 draining)",
		"queue 3",
		"restarts 1",
		"state keys 12 (3.4KiB)",
		"up 12.0s",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q", want)
		}
	}
	if strings.Contains(out, "1xx") {
		t.Errorf("1xx shown though zero")
	}
	rows := []string{
		`(?m)^\s+1\s+4242\s+busy\s+70\s+45\.3MiB\s+0\s+2\.5s\s+GET /sleep$`,
		`(?m)^\s+2\s+4243\s+idle\s+80\s+500\.0KiB\s+1$`,
		`(?m)^\s+3\s+4244\s+draining\s+1\s+3\.0GiB\s+0$`,
		`(?m)^SLOT\s+PID\s+STATE\s+REQS\s+RSS\s+RESTARTS\s+AGE\s+CURRENT$`,
	}
	for _, re := range rows {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("no line matching %s", re)
		}
	}
	if i, j := strings.Index(out, "4242"), strings.Index(out, "4243"); i < 0 || j < i {
		t.Errorf("slot 1 not listed before slot 2")
	}
}

func TestWorkerRowInflightAndHostilePath(t *testing.T) {
	row := WorkerRow(pool.WorkerStats{Slot: 1, PID: 7, State: "busy", Inflight: 3, Current: "POST /a\x1b[2J\x07\u009bb", CurrentAgeSeconds: 75})
	if strings.ContainsAny(row, "\x1b\x07\u009b") {
		t.Errorf("control characters reach the terminal: %q", row)
	}
	if !strings.Contains(row, "busy(3)") || !strings.HasSuffix(row, "1m15s  POST /a?[2J??b") {
		t.Errorf("row = %q", row)
	}
}

func TestFormats(t *testing.T) {
	for n, want := range map[int64]string{0: "-", 512: "512B", 1536: "1.5KiB", 45<<20 + 300<<10: "45.3MiB", 3 << 30: "3.0GiB", 5 << 40: "5.0TiB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
	for sec, want := range map[float64]string{0.35: "350ms", 2.54: "2.5s", 59.99: "59.9s", 123: "2m03s", 3720: "1h02m", 273600: "3d04h"} {
		if got := FormatDuration(sec); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", sec, got, want)
		}
	}
	for sec, want := range map[float64]string{0.001: "1ms", 0.0025: "2.5ms", 0.25: "250ms", 1: "1s", 2.5: "2.5s", 30: "30s"} {
		if got := FormatLatency(sec); got != want {
			t.Errorf("FormatLatency(%v) = %q, want %q", sec, got, want)
		}
	}
}

func TestNewSource(t *testing.T) {
	for addr, want := range map[string][2]string{
		"127.0.0.1:9000":             {"http://127.0.0.1:9000/stats", "127.0.0.1:9000"},
		":9100":                      {"http://127.0.0.1:9100/stats", "127.0.0.1:9100"},
		"9100":                       {"http://127.0.0.1:9100/stats", "127.0.0.1:9100"},
		"[::1]:9000":                 {"http://[::1]:9000/stats", "[::1]:9000"},
		"http://10.0.0.1:9000":       {"http://10.0.0.1:9000/stats", "10.0.0.1:9000"},
		"http://10.0.0.1:9000/":      {"http://10.0.0.1:9000/stats", "10.0.0.1:9000"},
		"http://h:9000/custom/stats": {"http://h:9000/custom/stats", "h:9000"},
		"unix:/run/hb/stats.sock":    {"http://unix/stats", "unix:/run/hb/stats.sock"},
	} {
		s, err := NewSource(addr)
		if err != nil {
			t.Errorf("NewSource(%q): %v", addr, err)
			continue
		}
		if s.url != want[0] || s.Addr != want[1] {
			t.Errorf("NewSource(%q) = %q, %q; want %q, %q", addr, s.url, s.Addr, want[0], want[1])
		}
	}
	for _, bad := range []string{"nonsense", "ftp://h:1", "unix:", "http://"} {
		if _, err := NewSource(bad); err == nil {
			t.Errorf("NewSource(%q) accepted", bad)
		}
	}
}
