package pool

import (
	"github.com/hornbeam-go/hornbeam/internal/wire"
	"github.com/hornbeam-go/hornbeam/pymarshal"
)

// Publish sends a hornbeam.publish to every embedded worker that has
// subscribers to topic (it said so with a Subscribers frame) and returns
// how many subscribers there are in all. text says whether data is UTF-8
// text (a WebSocket text message) or bytes.
func (p *Pool) Publish(topic string, text bool, data []byte) (int, error) {
	payload, err := pymarshal.Marshal(pymarshal.Tuple{topic, text, data})
	if err != nil {
		return 0, err
	}
	var to []*worker
	n := 0
	p.mu.Lock()
	for _, w := range p.workers {
		if c := w.subs[topic]; c > 0 {
			to = append(to, w)
			n += c
		}
	}
	p.mu.Unlock()
	for _, w := range to {
		w.conn.WriteFrame(wire.Publish, 0, payload) // a worker gone meanwhile is no subscriber
	}
	return n, nil
}

// subscribers records a worker's Subscribers frame: (topic, n).
func (w *worker) subscribers(payload []byte) {
	v, _ := pymarshal.Unmarshal(payload)
	t, ok := v.(pymarshal.Tuple)
	if !ok || len(t) != 2 {
		return
	}
	topic, _ := t[0].(string)
	n, _ := t[1].(int64)
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	if n <= 0 {
		delete(w.subs, topic)
		return
	}
	if w.subs == nil {
		w.subs = map[string]int{}
	}
	w.subs[topic] = int(n)
}
