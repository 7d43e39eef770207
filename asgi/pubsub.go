package asgi

// Pub/sub: hornbeam.publish reaches the master as a state call, and the
// master sends it (a Publish frame) to each worker with subscribers to the
// topic, where Deliver writes it to the WebSockets subscribed with
// ws_subscribe (by Go: no Python work per receiver) and passes it once to
// the loop for the subscribe() iterators.

// topicSubs are one topic's subscribers in this worker.
type topicSubs struct {
	ws map[int64]*stream // WebSockets (ws_subscribe)
	py bool              // subscribe() iterators (the loop keeps them)
}

// fanoutQueue bounds what a subscribed WebSocket may have queued: a client
// that does not read misses the messages beyond (its own sends are not
// affected).
const fanoutQueue = 4 * window

// subscribe records an opSubscribe (loop thread).
func (s *Server) subscribe(sid int64, topic string, on bool) {
	s.psmu.Lock()
	ts := s.topics[topic]
	if ts == nil {
		if !on {
			s.psmu.Unlock()
			return
		}
		ts = &topicSubs{ws: map[int64]*stream{}}
		s.topics[topic] = ts
	}
	if sid == 0 {
		ts.py = on
	} else if st := s.get(sid); st != nil && on {
		ts.ws[sid] = st
		st.topics = append(st.topics, topic)
	} else {
		delete(ts.ws, sid)
	}
	n := s.countLocked(topic, ts)
	s.psmu.Unlock()
	if s.cfg.OnSubscribers != nil {
		s.cfg.OnSubscribers(topic, n)
	}
}

func (s *Server) countLocked(topic string, ts *topicSubs) int {
	n := len(ts.ws)
	if ts.py {
		n++
	}
	if n == 0 {
		delete(s.topics, topic)
	}
	return n
}

// unsubscribeAll removes a stream that ends from its topics.
func (s *Server) unsubscribeAll(st *stream) {
	type change struct {
		topic string
		n     int
	}
	var changes []change
	s.psmu.Lock()
	for _, topic := range st.topics {
		if ts := s.topics[topic]; ts != nil {
			if _, ok := ts.ws[st.id]; ok {
				delete(ts.ws, st.id)
				changes = append(changes, change{topic, s.countLocked(topic, ts)})
			}
		}
	}
	s.psmu.Unlock()
	if s.cfg.OnSubscribers != nil {
		for _, c := range changes {
			s.cfg.OnSubscribers(c.topic, c.n)
		}
	}
}

// Deliver hands a published message to this worker's subscribers of
// topic: text says it is UTF-8 text (a text message), else bytes.
func (s *Server) Deliver(topic string, text bool, data []byte) {
	s.psmu.Lock()
	ts := s.topics[topic]
	if ts == nil {
		s.psmu.Unlock()
		return
	}
	py := ts.py
	socks := make([]*stream, 0, len(ts.ws))
	for _, st := range ts.ws {
		socks = append(socks, st)
	}
	s.psmu.Unlock()
	for _, st := range socks {
		st.mu.Lock()
		full := st.queued > fanoutQueue
		st.mu.Unlock()
		if !full {
			st.push(op{kind: opWSSend, more: text, data: data})
		}
	}
	if py {
		s.post(evPublish, 0, topic, text, data)
	}
}
