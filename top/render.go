package top

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/hornbeam-go/hornbeam"
	"github.com/hornbeam-go/hornbeam/pool"
)

// Summary is what one screen of hornbeam top shows: the figures derived
// from two polls of the stats endpoint. It is computed by [Summarize] and
// holds no I/O state, so it can be built and checked in tests.
type Summary struct {
	// Recent is true when ReqPerSec, P50, P99 and StatusDelta describe the
	// Window between two polls; false when they are averages since the
	// server started (first poll, server restarted, or no request finished
	// in the window for the quantiles — see LatencyRecent).
	Recent bool
	// Window is the time between the two polls (zero when not Recent).
	Window time.Duration
	// ReqPerSec is the rate of finished requests: the difference of the
	// total between the polls divided by Window, or the total divided by
	// the server's uptime when there is no usable previous poll.
	ReqPerSec float64
	// LatencyRecent is true when P50 and P99 come from the requests that
	// finished between the polls (the difference of the cumulative bucket
	// counts); false when they fall back to the all-time histogram because
	// nothing finished in the window.
	LatencyRecent bool
	// P50 and P99 are latency estimates in seconds: the upper bound of the
	// histogram bucket holding that quantile; +Inf beyond the last bound;
	// 0 when no request has finished at all.
	P50, P99 float64
	// MaxBound is the histogram's largest finite bound, in seconds.
	MaxBound float64
	// Requests is the server's total of finished requests.
	Requests uint64
	// Status counts finished requests by class since start ("1xx" ...
	// "5xx", "cut"); StatusDelta is the part of it in the window (nil when
	// not Recent).
	Status, StatusDelta map[string]uint64
	QueueDepth          int     // requests waiting for a worker
	Restarts            int     // unexpected worker deaths replaced
	StateKeys           int     // keys in the shared state
	StateBytes          int64   // approximate bytes of the shared state
	Uptime              float64 // server uptime, seconds
	// Workers are the pool's workers ordered by slot, then pid.
	Workers []pool.WorkerStats
	// Busy, Idle and Other count the workers by state (Other: draining,
	// starting, ...).
	Busy, Idle, Other int
}

// Summarize computes a Summary from the current poll cur and the previous
// one prev (nil on the first poll), elapsed apart. When prev is unusable
// (nil, elapsed not positive, or the server restarted in between, seen as
// a total that went down) the rates are all-time averages.
func Summarize(prev *hornbeam.Stats, cur hornbeam.Stats, elapsed time.Duration) Summary {
	s := Summary{
		Requests:   cur.Requests,
		Status:     cur.Status,
		QueueDepth: cur.QueueDepth,
		Restarts:   cur.Restarts,
		StateKeys:  cur.StateKeys,
		StateBytes: cur.StateBytes,
		Uptime:     cur.UptimeSeconds,
	}
	if s.Status == nil {
		s.Status = map[string]uint64{}
	}
	if n := len(cur.Latency.Buckets); n > 0 {
		s.MaxBound = cur.Latency.Buckets[n-1].LE
	}
	s.Workers = append([]pool.WorkerStats(nil), cur.Workers...)
	sort.SliceStable(s.Workers, func(i, j int) bool {
		a, b := s.Workers[i], s.Workers[j]
		if a.Slot != b.Slot {
			return a.Slot < b.Slot
		}
		return a.PID < b.PID
	})
	for _, w := range s.Workers {
		switch w.State {
		case "busy":
			s.Busy++
		case "idle":
			s.Idle++
		default:
			s.Other++
		}
	}

	usable := prev != nil && elapsed > 0 && cur.Requests >= prev.Requests &&
		cur.Latency.Count >= prev.Latency.Count && cur.UptimeSeconds >= prev.UptimeSeconds
	if !usable {
		if cur.UptimeSeconds > 0 {
			s.ReqPerSec = float64(cur.Requests) / cur.UptimeSeconds
		}
		s.P50 = quantile(cur.Latency.Buckets, cur.Latency.Count, 0.5)
		s.P99 = quantile(cur.Latency.Buckets, cur.Latency.Count, 0.99)
		return s
	}
	s.Recent = true
	s.Window = elapsed
	s.ReqPerSec = float64(cur.Requests-prev.Requests) / elapsed.Seconds()
	s.StatusDelta = map[string]uint64{}
	for k, v := range s.Status {
		if p := prev.Status[k]; v >= p {
			s.StatusDelta[k] = v - p
		}
	}
	if d, n, ok := bucketDelta(prev.Latency, cur.Latency); ok && n > 0 {
		s.LatencyRecent = true
		s.P50 = quantile(d, n, 0.5)
		s.P99 = quantile(d, n, 0.99)
	} else {
		s.P50 = quantile(cur.Latency.Buckets, cur.Latency.Count, 0.5)
		s.P99 = quantile(cur.Latency.Buckets, cur.Latency.Count, 0.99)
	}
	return s
}

// bucketDelta subtracts two cumulative histograms bucket by bucket, giving
// the cumulative histogram of the requests that finished in between and
// their number. ok is false when the bounds differ or a count went down.
func bucketDelta(prev, cur hornbeam.Histogram) (d []hornbeam.Bucket, n uint64, ok bool) {
	if len(prev.Buckets) != len(cur.Buckets) || cur.Count < prev.Count {
		return nil, 0, false
	}
	d = make([]hornbeam.Bucket, len(cur.Buckets))
	for i, b := range cur.Buckets {
		p := prev.Buckets[i]
		if p.LE != b.LE || b.Count < p.Count {
			return nil, 0, false
		}
		d[i] = hornbeam.Bucket{LE: b.LE, Count: b.Count - p.Count}
	}
	return d, cur.Count - prev.Count, true
}

// quantile estimates the q-quantile of n observations from cumulative
// buckets: the upper bound of the first bucket holding at least ⌈q·n⌉ of
// them, or +Inf when they lie beyond the last bound (the implicit +Inf
// bucket, whose count is n). It is 0 when n is 0.
func quantile(buckets []hornbeam.Bucket, n uint64, q float64) float64 {
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	rank = max(rank, 1)
	for _, b := range buckets {
		if b.Count >= rank {
			return b.LE
		}
	}
	return math.Inf(1)
}

// Render is the plain-text screen for two polls: Summarize's figures as a
// few total lines, a blank line, then one row per worker. It ends with a
// newline. --once and the non-terminal mode print it as is.
func Render(prev *hornbeam.Stats, cur hornbeam.Stats, elapsed time.Duration) string {
	s := Summarize(prev, cur, elapsed)
	var b strings.Builder
	for _, l := range s.TotalLines() {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(WorkerHeader)
	b.WriteByte('\n')
	for _, w := range s.Workers {
		b.WriteString(WorkerRow(w))
		b.WriteByte('\n')
	}
	return b.String()
}

// TotalLines are the summary lines above the worker table.
func (s Summary) TotalLines() []string {
	window := "since start"
	if s.Recent {
		window = "last " + FormatDuration(s.Window.Seconds())
	}
	latWindow := "since start"
	if s.LatencyRecent {
		latWindow = window
	}
	lat := "p50 -  p99 -"
	if s.Requests > 0 || s.P50 > 0 {
		lat = fmt.Sprintf("p50 %s  p99 %s", s.latency(s.P50), s.latency(s.P99))
	}
	workers := fmt.Sprintf("workers %d (%d busy, %d idle", len(s.Workers), s.Busy, s.Idle)
	if s.Other > 0 {
		others := map[string]int{}
		var names []string
		for _, w := range s.Workers {
			if w.State != "busy" && w.State != "idle" {
				if others[w.State] == 0 {
					names = append(names, w.State)
				}
				others[w.State]++
			}
		}
		sort.Strings(names)
		for _, n := range names {
			workers += fmt.Sprintf(", %d %s", others[n], Sanitize(n))
		}
	}
	workers += ")"

	var status []string
	for _, k := range []string{"1xx", "2xx", "3xx", "4xx", "5xx", "cut"} {
		v := s.Status[k]
		if k == "1xx" && v == 0 {
			continue
		}
		f := fmt.Sprintf("%s %d", k, v)
		if d := s.StatusDelta[k]; d > 0 {
			f += fmt.Sprintf(" (+%d)", d)
		}
		status = append(status, f)
	}
	stateBytes := FormatBytes(s.StateBytes)
	if s.StateBytes <= 0 {
		stateBytes = "0B"
	}
	return []string{
		fmt.Sprintf("req/s %.1f (%s)  requests %d  latency %s (%s)", s.ReqPerSec, window, s.Requests, lat, latWindow),
		"status " + strings.Join(status, "  "),
		fmt.Sprintf("%s  queue %d  restarts %d  state keys %d (%s)  up %s",
			workers, s.QueueDepth, s.Restarts, s.StateKeys, stateBytes, FormatDuration(s.Uptime)),
	}
}

// WorkerHeader is the heading of the worker table, aligned with WorkerRow.
var WorkerHeader = fmt.Sprintf(rowFormat, "SLOT", "PID", "STATE", "REQS", "RSS", "RESTARTS", "AGE", "CURRENT")

const rowFormat = "%4s %8s %-9s %9s %9s %8s %8s  %s"

// WorkerRow formats one worker: slot, pid, state (with the number of
// requests in flight when more than one), requests served, resident
// memory, restarts of its slot, and the method and path of its oldest
// request in flight with that request's age. Control characters in the
// path are shown as '?' so a request cannot write to the terminal.
func WorkerRow(w pool.WorkerStats) string {
	state := w.State
	if w.Inflight > 1 {
		state += "(" + strconv.Itoa(w.Inflight) + ")"
	}
	age, cur := "", ""
	if w.Current != "" {
		age = FormatDuration(w.CurrentAgeSeconds)
		cur = Sanitize(w.Current)
	}
	return strings.TrimRight(fmt.Sprintf(rowFormat,
		strconv.Itoa(w.Slot), strconv.Itoa(w.PID), state, strconv.FormatUint(w.Requests, 10),
		FormatBytes(w.RSSBytes), strconv.Itoa(w.Restarts), age, cur), " ")
}

// Sanitize replaces control characters (C0, DEL and C1, which include
// the escape character) and invalid UTF-8 with '?'.
func Sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == unicode.ReplacementChar || unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}

// FormatBytes writes a byte count in binary units: 512B, 3.4KiB, 41.2MiB,
// 1.5GiB; "-" for 0 (unknown).
func FormatBytes(n int64) string {
	if n <= 0 {
		return "-"
	}
	if n < 1024 {
		return strconv.FormatInt(n, 10) + "B"
	}
	v := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		v /= 1024
		if v < 1024 || u == "TiB" {
			return strconv.FormatFloat(v, 'f', 1, 64) + u
		}
	}
	panic("unreachable")
}

// FormatDuration writes seconds compactly: 350ms, 12.3s, 2m03s, 1h02m,
// 3d04h.
func FormatDuration(sec float64) string {
	switch {
	case sec < 0:
		sec = 0
		fallthrough
	case sec < 1:
		return strconv.Itoa(int(sec*1000)) + "ms"
	case sec < 60:
		return strconv.FormatFloat(math.Floor(sec*10)/10, 'f', 1, 64) + "s"
	}
	t := int64(sec)
	switch {
	case t < 3600:
		return fmt.Sprintf("%dm%02ds", t/60, t%60)
	case t < 86400:
		return fmt.Sprintf("%dh%02dm", t/3600, t%3600/60)
	}
	return fmt.Sprintf("%dd%02dh", t/86400, t%86400/3600)
}

func (s Summary) latency(sec float64) string {
	if math.IsInf(sec, 1) {
		return ">" + FormatLatency(s.MaxBound)
	}
	return FormatLatency(sec)
}

// FormatLatency writes a latency bucket bound: 1ms, 2.5ms, 250ms, 1s,
// 2.5s.
func FormatLatency(sec float64) string {
	if sec < 1 {
		return strconv.FormatFloat(sec*1000, 'g', 4, 64) + "ms"
	}
	return strconv.FormatFloat(sec, 'g', 4, 64) + "s"
}
