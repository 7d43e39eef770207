package hornbeam

import (
	"os"
	"path/filepath"
	"testing"
)

// TestChooseMode: without --worker-mode the embedded workers run when the
// worker library is there and nothing only the process mode has is asked
// for; otherwise the process mode, with the reason for the start-up line.
func TestChooseMode(t *testing.T) {
	lib := filepath.Join(t.TempDir(), "hornbeam-worker.so")
	if err := os.WriteFile(lib, []byte("stands in for the library"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "nope.so")
	for _, tc := range []struct {
		name      string
		opts      Options
		mode, why string
	}{
		{"no library beside the test binary", Options{}, ModeProcess, "no hornbeam-worker.so beside the binary for embedded workers"},
		{"library", Options{WorkerLibrary: lib}, ModeEmbedded, ""},
		{"library, mTLS", Options{WorkerLibrary: lib, ClientCAFile: "ca.pem", CipherSuites: []uint16{0xc02f}}, ModeEmbedded, ""},
		{"library, user", Options{WorkerLibrary: lib, WorkerUser: &WorkerUser{}}, ModeEmbedded, ""},
		{"no library wanted", Options{WorkerLibrary: "-"}, ModeProcess, ""},
		{"a missing library is Start's error", Options{WorkerLibrary: missing}, ModeEmbedded, ""},
		{"given", Options{WorkerMode: ModeProcess, WorkerLibrary: lib}, ModeProcess, ""},
		{"ASGI", Options{Interface: "asgi"}, ModeEmbedded, ""},
		{"mounts", Options{Mounts: []string{"/a=a:app"}}, ModeEmbedded, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opts
			o.defaults()
			why := o.chooseMode()
			if o.WorkerMode != tc.mode || why != tc.why {
				t.Errorf("mode %q (%q), want %q (%q)", o.WorkerMode, why, tc.mode, tc.why)
			}
		})
	}
}
