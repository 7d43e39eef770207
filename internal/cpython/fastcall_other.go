//go:build !((amd64 || arm64) && linux)

package cpython

import "github.com/ebitengine/purego"

// ccall calls a C function with up to six integer or pointer arguments.
//
//go:uintptrescapes
func ccall(fn, a1, a2, a3, a4, a5, a6 uintptr) uintptr {
	r, _, _ := purego.SyscallN(fn, a1, a2, a3, a4, a5, a6)
	return r
}
