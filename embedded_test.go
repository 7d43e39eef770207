package hornbeam_test

import (
	"os"
	"testing"

	"github.com/hornbeam-go/hornbeam"
	"github.com/hornbeam-go/hornbeam/worker"
)

// TestMain lets this test binary serve as an embedded worker: the server
// starts os.Executable() with worker.EnvConfig set.
func TestMain(m *testing.M) {
	if os.Getenv(worker.EnvConfig) != "" {
		os.Exit(hornbeam.WorkerMain())
	}
	os.Exit(m.Run())
}
