package worker

import (
	"strings"
	"testing"
)

// TestCheckBuild: a worker library built from another revision than the
// server refuses to start, saying how to rebuild it; an unknown build on
// either side (go test binaries, builds outside a checkout) is let through.
func TestCheckBuild(t *testing.T) {
	own := BuildID() // "" in a test binary: stand in for it
	for _, tc := range []struct {
		server, own string
		refused     bool
	}{
		{"", "", false},
		{"abc", "", false},
		{"", "abc", false},
		{"abc", "abc", false},
		{"abc+modified", "abc+modified", false},
		{"abc", "def", true},
		{"abc", "abc+modified", true},
	} {
		err := checkBuildAgainst(tc.server, tc.own)
		if (err != nil) != tc.refused {
			t.Errorf("server %q, worker %q: %v; refused: want %v", tc.server, tc.own, err, tc.refused)
		}
		if err != nil && !strings.Contains(err.Error(), "go build -buildmode=c-shared -o hornbeam-worker.so ./cmd/hornbeam-worker") {
			t.Errorf("the refusal does not say how to rebuild: %v", err)
		}
	}
	if err := checkBuild(own); err != nil {
		t.Errorf("checkBuild(own build %q): %v", own, err)
	}
}
