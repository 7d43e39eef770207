package hornbeam

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// watchPython reloads the workers when a .py file under the pythonpath
// changes (--reload, for development). It polls modification times: no
// platform file-notification API is needed, and a burst of saves becomes one
// reload.
func (s *Server) watchPython(ctx context.Context, every time.Duration) {
	last := s.pythonMtimes()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			return
		case <-t.C:
		}
		now := s.pythonMtimes()
		if changed := diffMtimes(last, now); changed != "" {
			s.errorLog.Printf("%s changed; reloading the workers (--reload)", changed)
			// A failure is logged by the pool, with the reason: once.
			s.Reload(ctx)
		}
		last = now
	}
}

// skipDirs are not watched: version control, caches, virtualenvs.
var skipDirs = map[string]bool{".git": true, "__pycache__": true, "node_modules": true, ".venv": true, "venv": true, ".tox": true}

// pythonMtimes maps every .py file under the pythonpath (at most 20,000)
// to its modification time.
func (s *Server) pythonMtimes() map[string]time.Time {
	out := map[string]time.Time{}
	for _, root := range s.opts.PythonPath {
		filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || len(out) >= 20000 {
				return filepath.SkipDir
			}
			if d.IsDir() {
				if path != root && (skipDirs[d.Name()] || strings.HasPrefix(d.Name(), ".")) {
					return filepath.SkipDir
				}
				return nil
			}
			if strings.HasSuffix(path, ".py") {
				if fi, err := os.Stat(path); err == nil {
					out[path] = fi.ModTime()
				}
			}
			return nil
		})
	}
	return out
}

func diffMtimes(a, b map[string]time.Time) string {
	for p, t := range b {
		if u, ok := a[p]; !ok || !u.Equal(t) {
			return p
		}
	}
	for p := range a {
		if _, ok := b[p]; !ok {
			return p
		}
	}
	return ""
}
