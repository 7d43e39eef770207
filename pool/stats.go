package pool

import (
	"bytes"
	"os"
	"strconv"
	"time"
)

// WorkerStats describes one worker process.
type WorkerStats struct {
	Slot              int     `json:"slot"`
	PID               int     `json:"pid"`
	State             string  `json:"state"` // idle, busy or draining
	Requests          uint64  `json:"requests"`
	Inflight          int     `json:"inflight"`
	Current           string  `json:"current,omitempty"`             // method and path of its oldest request
	CurrentAgeSeconds float64 `json:"current_age_seconds,omitempty"` // how long that request has run
	Restarts          int     `json:"restarts"`                      // of its slot
	RSSBytes          int64   `json:"rss_bytes"`                     // resident memory
	UptimeSeconds     float64 `json:"uptime_seconds"`
}

// Stats is a snapshot of the pool.
type Stats struct {
	Workers    []WorkerStats `json:"workers"`
	QueueDepth int           `json:"queue_depth"` // requests waiting for a worker
	Restarts   int           `json:"restarts"`    // unexpected worker deaths replaced
}

// Stats returns a snapshot of the pool.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	type row struct {
		w         *worker
		st        WorkerStats
		current   string
		currentAt time.Time
	}
	rows := make([]row, 0, len(p.workers))
	var st Stats
	st.QueueDepth = len(p.waiters)
	for _, s := range p.slots {
		st.Restarts += s.restarts
	}
	for _, w := range p.workers {
		state := "idle"
		switch {
		case w.state == stateDraining:
			state = "draining"
		case w.state != stateReady:
			state = w.state.String()
		case w.inflight+w.active > 0 || w.inCall.Load() > 0:
			state = "busy"
		}
		rows = append(rows, row{w: w, st: WorkerStats{
			Slot: w.slot + 1, PID: w.pid, State: state, Requests: w.served,
			Inflight: w.inflight + w.active, Restarts: p.slots[w.slot].restarts,
		}, current: w.current, currentAt: w.currentAt})
	}
	p.mu.Unlock()
	now := time.Now()
	for _, r := range rows {
		ws := r.st
		label, start := r.w.oldest()
		if start.IsZero() { // an embedded worker's, from its Load frames
			label, start = r.current, r.currentAt
		}
		if !start.IsZero() {
			ws.Current = label
			ws.CurrentAgeSeconds = now.Sub(start).Seconds()
		}
		ws.RSSBytes = rss(r.w.pid)
		ws.UptimeSeconds = now.Sub(r.w.startedAt).Seconds()
		st.Workers = append(st.Workers, ws)
	}
	return st
}

// rss reads a process's resident set size from /proc (0 if unavailable).
func rss(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	i := bytes.Index(b, []byte("VmRSS:"))
	if i < 0 {
		return 0
	}
	f := bytes.Fields(b[i+6:])
	if len(f) < 2 {
		return 0
	}
	kb, _ := strconv.ParseInt(string(f[0]), 10, 64)
	return kb * 1024
}
