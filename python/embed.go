// Package python holds hornbeam's Python runtime (the worker loop and the
// hornbeam module applications import), embedded in the binary.
package python

import "embed"

// FS holds hornbeam/*.py and hornbeam_erlang.py, laid out as they go on
// sys.path.
//
//go:embed hornbeam/*.py hornbeam_erlang.py
var FS embed.FS
