// Package testutil holds small helpers shared by the tests of several
// packages.
package testutil

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// SyncBuffer is a bytes.Buffer safe for concurrent writers and readers:
// a server's log, a process's output.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// RunWithHornbeam is a TestMain body for tests that run the hornbeam
// command: it builds the package at pkg (a path relative to the test's
// directory, like "../cmd/hornbeam") into a temporary directory, sets
// *bin to the binary, runs the tests and removes the directory. It
// returns the exit status for os.Exit. With HORNBEAM_TEST_WORKER_MODE=hosted
// it builds the worker library (cmd/hornbeam-worker) beside the binary,
// which then runs its embedded workers as python3 hosting it.
func RunWithHornbeam(m *testing.M, pkg string, bin *string) int {
	dir, err := os.MkdirTemp("", "hornbeam-test-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "creating a temporary directory: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = "/usr/local/go/bin/go"
	}
	*bin = filepath.Join(dir, "hornbeam")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, goTool, "build", "-o", *bin, pkg).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build -o %s %s: %v\n%s", *bin, pkg, err, out)
		return 1
	}
	if os.Getenv("HORNBEAM_TEST_WORKER_MODE") == "hosted" {
		// The worker library beside the binary: its embedded workers are
		// python3 hosting it.
		abs, err := filepath.Abs(pkg) // .../cmd/hornbeam: the library's package is its sibling
		if err == nil {
			_, err = BuildWorkerLibrary(dir, filepath.Join(filepath.Dir(abs), "hornbeam-worker"))
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return m.Run()
}

// BuildWorkerLibrary builds the embedded worker as a shared library
// (package pkg, normally cmd/hornbeam-worker, relative to the test's
// directory) into dir and returns its path. It needs cgo: a C compiler.
func BuildWorkerLibrary(dir, pkg string) (string, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = "/usr/local/go/bin/go"
	}
	lib := filepath.Join(dir, "hornbeam-worker.so")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, "build", "-buildmode=c-shared", "-o", lib, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build -buildmode=c-shared -o %s %s: %v\n%s", lib, pkg, err, out)
	}
	return lib, nil
}
