package wsgi

import (
	"fmt"
	"os"
	"sync"
)

// spool is a byte queue between a worker's response and a client that reads
// it more slowly than the worker writes it: memory up to memLimit, then an
// unlinked temporary file. Writes never wait for the client, so a slow
// reader costs disk and a goroutine, never a Python worker.
type spool struct {
	dir      string
	memLimit int

	mu      sync.Mutex
	mem     [][]byte
	memSize int
	file    *os.File // the spill, from the first write over memLimit on
	fileW   int64    // bytes written to file
	fileR   int64    // bytes read back
	closed  bool     // no more writes
	gone    bool     // the reader has stopped
	ready   chan struct{}
}

func newSpool(dir string, memLimit int) *spool {
	return &spool{dir: dir, memLimit: memLimit, ready: make(chan struct{}, 1)}
}

func (s *spool) signal() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// write queues a copy of p (the caller may reuse p). It fails only if the
// spill file cannot be written.
func (s *spool) write(p []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.signal()
	if s.gone {
		return nil
	}
	if s.file == nil && s.memSize+len(p) <= s.memLimit {
		s.mem = append(s.mem, append([]byte(nil), p...)) // p is the caller's
		s.memSize += len(p)
		return nil
	}
	if s.file == nil {
		f, err := os.CreateTemp(s.dir, "hornbeam-response-*")
		if err != nil {
			return fmt.Errorf("spooling a response for a slow client: %w", err)
		}
		os.Remove(f.Name())
		s.file = f
	}
	n, err := s.file.WriteAt(p, s.fileW)
	s.fileW += int64(n)
	if err != nil {
		return fmt.Errorf("spooling a response for a slow client: %w", err)
	}
	return nil
}

// close says no more writes will come.
func (s *spool) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.signal()
}

// next returns the next bytes to send, waiting for them; ok is false once
// the spool is closed and empty. buf is used for data read back from the
// file.
func (s *spool) next(buf []byte) (p []byte, ok bool, err error) {
	for {
		s.mu.Lock()
		if len(s.mem) > 0 {
			p = s.mem[0]
			s.mem[0] = nil
			s.mem = s.mem[1:]
			s.memSize -= len(p)
			s.mu.Unlock()
			return p, true, nil
		}
		if s.file != nil && s.fileR < s.fileW {
			n := int(min(int64(len(buf)), s.fileW-s.fileR))
			off := s.fileR
			f := s.file
			s.mu.Unlock()
			k, err := f.ReadAt(buf[:n], off) // a region no write touches
			s.mu.Lock()
			s.fileR += int64(k)
			s.mu.Unlock()
			return buf[:k], true, err
		}
		if s.closed {
			s.mu.Unlock()
			return nil, false, nil
		}
		s.mu.Unlock()
		<-s.ready
	}
}

// empty reports whether everything written has been taken.
func (s *spool) empty() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.mem) == 0 && (s.file == nil || s.fileR == s.fileW)
}

// release drops what is left and the spill file; the reader has stopped.
func (s *spool) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gone = true
	s.mem = nil
	if s.file != nil {
		s.file.Close()
		s.file = nil
	}
}
