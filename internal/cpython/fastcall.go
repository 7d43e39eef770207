//go:build (amd64 || arm64) && linux

package cpython

import (
	"sync"
	"unsafe"
)

// cargs is the block the trampoline reads: the function, up to six
// integer or pointer arguments, and the result.
type cargs struct {
	fn, a1, a2, a3, a4, a5, a6, r uintptr
}

//go:linkname runtime_cgocall runtime.cgocall
//go:noescape
func runtime_cgocall(fn uintptr, arg unsafe.Pointer) int32

var trampolineABI0 uintptr

// cargsPool holds the blocks: on the heap, not the goroutine's stack, which
// may move while the C function calls back into Go.
var cargsPool = sync.Pool{New: func() any { return new(cargs) }}

// ccall calls a C function with up to six integer/pointer arguments
// through runtime.cgocall (what purego.SyscallN does, without its
// 32-argument copies).
//
//go:uintptrescapes
func ccall(fn, a1, a2, a3, a4, a5, a6 uintptr) uintptr {
	c := cargsPool.Get().(*cargs)
	c.fn, c.a1, c.a2, c.a3, c.a4, c.a5, c.a6 = fn, a1, a2, a3, a4, a5, a6
	runtime_cgocall(trampolineABI0, unsafe.Pointer(c))
	r := c.r
	cargsPool.Put(c)
	return r
}
