package cpython

import (
	"errors"
	"unsafe"

	"github.com/ebitengine/purego"
)

// One C entry point serves every Go function made by NewFunction: Python
// passes it the function's self, an int indexing Interp.funcs.
var (
	dispatchC   uintptr
	dispatchFor *Interp
)

func dispatch(self, arg uintptr) uintptr {
	py := dispatchFor
	i := call1(py.a.LongAsLongLong, self)
	py.funcsMu.Lock()
	f := py.funcs[i]
	py.funcsMu.Unlock()
	return uintptr(f(Object(arg)))
}

const methO = 0x0008 // METH_O: one positional argument

// NewFunction makes a Python builtin function of one argument that runs f
// on the calling goroutine, with the GIL held. f gets a borrowed reference
// and returns a new reference, or 0 after SetError. Python calls it on the
// thread that called into Python (then CurrentSlot is the caller's slot),
// or on a thread of its own if the app passes it to one.
func (py *Interp) NewFunction(name string, f func(arg Object) Object) (Object, error) {
	if dispatchC == 0 {
		dispatchFor = py
		dispatchC = purego.NewCallback(dispatch)
	}
	py.funcsMu.Lock()
	idx := len(py.funcs)
	py.funcs = append(py.funcs, f)
	py.funcsMu.Unlock()
	// The PyMethodDef and its name must outlive the function: C memory,
	// never freed (a few per process).
	cname := call1(py.a.MemRawMalloc, uintptr(len(name)+1))
	def := call1(py.a.MemRawMalloc, 32)
	if cname == 0 || def == 0 {
		return 0, errors.New("cpython: out of memory")
	}
	copy(unsafe.Slice((*byte)(ptr(cname)), len(name)+1), name+"\x00")
	d := (*[4]uintptr)(ptr(def)) // ml_name, ml_meth, ml_flags (int, padded), ml_doc
	d[0], d[1], d[2], d[3] = cname, dispatchC, methO, 0
	self, err := py.NewInt(int64(idx))
	if err != nil {
		return 0, err
	}
	fn := call3(py.a.CFunctionNewEx, def, uintptr(self), 0)
	py.DecRef(self)
	if fn == 0 {
		return 0, py.errOr("function")
	}
	return Object(fn), nil
}
