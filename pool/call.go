package pool

import (
	"time"

	"github.com/hornbeam-go/hornbeam/internal/wire"
)

// Call is one request held by a worker. Read its response frames from
// Frames until it is closed (the worker died) or an End or Error frame
// arrives; then call Close.
type Call struct {
	w      *worker
	id     uint32
	frames chan []wire.Frame
	done   chan struct{}
	label  string
	start  time.Time
	closed bool
}

// Frames delivers the worker's frames for this request, in batches of
// those that arrived together: Start, Body, File, Hints, End, Error. It is
// closed if the worker dies first.
func (c *Call) Frames() <-chan []wire.Frame { return c.frames }

// WorkerPID is the pid of the worker holding the call.
func (c *Call) WorkerPID() int { return c.w.pid }

// Close releases the call. finished reports whether the worker completed
// it (End or Error frame); an unfinished call's late frames are dropped.
func (c *Call) Close(finished bool) {
	if c.closed {
		return
	}
	c.closed = true
	close(c.done)
	c.w.forget(c)
	c.w.p.release(c.w, finished)
}

// Started is when the call was sent to the worker.
func (c *Call) Started() time.Time { return c.start }
