// Package python holds hornbeam's Python runtime (the worker loop and the
// hornbeam module applications import), embedded in the binary.
package python

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// FS holds hornbeam/*.py and hornbeam_erlang.py, laid out as they go on
// sys.path.
//
//go:embed hornbeam/*.py hornbeam_erlang.py
var FS embed.FS

// Unpack writes FS to a fresh temporary directory, to put on sys.path, and
// returns it; the caller removes it when done.
func Unpack() (string, error) {
	dir, err := os.MkdirTemp("", "hornbeam-runtime-")
	if err != nil {
		return "", fmt.Errorf("unpacking the Python runtime: %w", err)
	}
	err = fs.WalkDir(FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dir, path), 0o755)
		}
		b, err := FS.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, path), b, 0o644)
	})
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("unpacking the Python runtime: %w", err)
	}
	return dir, nil
}
