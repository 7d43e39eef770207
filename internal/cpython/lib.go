package cpython

import (
	"fmt"
	"strings"
	"unsafe"

	"github.com/ebitengine/purego"
)

// api holds the addresses of the libpython functions and data in use, all
// from the stable ABI except where noted. Every call goes through
// purego.SyscallN (about 0.1 us each: a cgocall without cgo).
type api struct {
	// start-up and threads
	DecodeLocale, SetProgramName, InitializeEx, FinalizeEx, GetVersion    uintptr
	SaveThread, RestoreThread, GILStateGetThisThreadState, ThreadStateNew uintptr
	InterpreterStateMain, ThreadStateGet                                  uintptr // not stable ABI (3.8+)
	IncRef, DecRef                                                        uintptr
	ErrOccurred, ErrFetch, ErrNormalize, ErrClear, ErrSetString           uintptr
	ExceptionSetTraceback                                                 uintptr
	ImportModule, GetAttrString, SetAttrString, CallObject                uintptr
	CallOneArg, Vectorcall                                                uintptr // 3.9+, not stable ABI before 3.12: may be 0
	CompileString, EvalCode, EvalGetBuiltins                              uintptr
	MarshalReadObjectFromString, MarshalWriteObjectToString               uintptr // not stable ABI (all 3.x)
	BytesAsStringAndSize, BytesFromStringAndSize                          uintptr
	UnicodeAsUTF8AndSize, UnicodeFromStringAndSize                        uintptr
	LongFromLongLong, LongAsLongLong                                      uintptr
	TupleNew, TupleSetItem, TupleGetItem, TupleSize                       uintptr
	DictNew, DictSetItemString, DictGetItemString                         uintptr
	CFunctionNewEx, MemRawMalloc                                          uintptr
	noneStruct, excRuntimeError, excOSError                               uintptr // data: &_Py_NoneStruct, &PyExc_* (a PyObject* each)
}

// symbols maps each field to its C name; optional ones may be missing.
func (a *api) symbols() []struct {
	p        *uintptr
	name     string
	optional bool
} {
	type s = struct {
		p        *uintptr
		name     string
		optional bool
	}
	return []s{
		{&a.DecodeLocale, "Py_DecodeLocale", false},
		{&a.SetProgramName, "Py_SetProgramName", false},
		{&a.InitializeEx, "Py_InitializeEx", false},
		{&a.FinalizeEx, "Py_FinalizeEx", false},
		{&a.GetVersion, "Py_GetVersion", false},
		{&a.SaveThread, "PyEval_SaveThread", false},
		{&a.RestoreThread, "PyEval_RestoreThread", false},
		{&a.GILStateGetThisThreadState, "PyGILState_GetThisThreadState", false},
		{&a.ThreadStateNew, "PyThreadState_New", false},
		{&a.InterpreterStateMain, "PyInterpreterState_Main", false},
		{&a.ThreadStateGet, "PyThreadState_Get", false},
		{&a.IncRef, "Py_IncRef", false},
		{&a.DecRef, "Py_DecRef", false},
		{&a.ErrOccurred, "PyErr_Occurred", false},
		{&a.ErrFetch, "PyErr_Fetch", false},
		{&a.ErrNormalize, "PyErr_NormalizeException", false},
		{&a.ErrClear, "PyErr_Clear", false},
		{&a.ErrSetString, "PyErr_SetString", false},
		{&a.ExceptionSetTraceback, "PyException_SetTraceback", false},
		{&a.ImportModule, "PyImport_ImportModule", false},
		{&a.GetAttrString, "PyObject_GetAttrString", false},
		{&a.SetAttrString, "PyObject_SetAttrString", false},
		{&a.CallObject, "PyObject_CallObject", false},
		{&a.CallOneArg, "PyObject_CallOneArg", true},
		{&a.Vectorcall, "PyObject_Vectorcall", true},
		{&a.CompileString, "Py_CompileString", false},
		{&a.EvalCode, "PyEval_EvalCode", false},
		{&a.EvalGetBuiltins, "PyEval_GetBuiltins", false},
		{&a.MarshalReadObjectFromString, "PyMarshal_ReadObjectFromString", false},
		{&a.MarshalWriteObjectToString, "PyMarshal_WriteObjectToString", false},
		{&a.BytesAsStringAndSize, "PyBytes_AsStringAndSize", false},
		{&a.BytesFromStringAndSize, "PyBytes_FromStringAndSize", false},
		{&a.UnicodeAsUTF8AndSize, "PyUnicode_AsUTF8AndSize", false},
		{&a.UnicodeFromStringAndSize, "PyUnicode_FromStringAndSize", false},
		{&a.LongFromLongLong, "PyLong_FromLongLong", false},
		{&a.LongAsLongLong, "PyLong_AsLongLong", false},
		{&a.TupleNew, "PyTuple_New", false},
		{&a.TupleSetItem, "PyTuple_SetItem", false},
		{&a.TupleGetItem, "PyTuple_GetItem", false},
		{&a.TupleSize, "PyTuple_Size", false},
		{&a.DictNew, "PyDict_New", false},
		{&a.DictSetItemString, "PyDict_SetItemString", false},
		{&a.DictGetItemString, "PyDict_GetItemString", false},
		{&a.CFunctionNewEx, "PyCFunction_NewEx", false},
		{&a.MemRawMalloc, "PyMem_RawMalloc", false},
		{&a.noneStruct, "_Py_NoneStruct", false},
		{&a.excRuntimeError, "PyExc_RuntimeError", false},
		{&a.excOSError, "PyExc_OSError", false},
	}
}

// load opens the library with RTLD_GLOBAL (C extension modules resolve
// their Py* symbols against it) and binds every symbol.
func load(path string) (*api, uintptr, error) {
	h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		return nil, 0, fmt.Errorf("loading %s: %w", path, err)
	}
	a, err := bind(h, path)
	return a, h, err
}

// bind looks every symbol up in the library h (what names it in errors).
func bind(h uintptr, what string) (*api, error) {
	a := new(api)
	var missing []string
	for _, s := range a.symbols() {
		p, err := purego.Dlsym(h, s.name)
		if err != nil || p == 0 {
			if !s.optional {
				missing = append(missing, s.name)
			}
			continue
		}
		*s.p = p
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s lacks %s: not a CPython library this version of hornbeam can embed", what, strings.Join(missing, ", "))
	}
	return a, nil
}

// The callN functions call a C function with N integer or pointer
// arguments. Pointers into Go memory may be passed, converted in the call
// expression: they stay valid for the call (go:uintptrescapes).

func call0(fn uintptr) uintptr { return ccall(fn, 0, 0, 0, 0, 0, 0) }

//go:uintptrescapes
func call1(fn, a uintptr) uintptr { return ccall(fn, a, 0, 0, 0, 0, 0) }

//go:uintptrescapes
func call2(fn, a, b uintptr) uintptr { return ccall(fn, a, b, 0, 0, 0, 0) }

//go:uintptrescapes
func call3(fn, a, b, c uintptr) uintptr { return ccall(fn, a, b, c, 0, 0, 0) }

//go:uintptrescapes
func call4(fn, a, b, c, d uintptr) uintptr { return ccall(fn, a, b, c, d, 0, 0) }

// ptr turns a C address into an unsafe.Pointer (for reading C memory).
func ptr(p uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&p)) }

// load64 reads a pointer-sized word of C memory.
func loadWord(p uintptr) uintptr { return *(*uintptr)(ptr(p)) }

// cstring returns s as a NUL-terminated C string in Go memory.
func cstring(s string) *byte {
	b := make([]byte, len(s)+1)
	copy(b, s)
	return &b[0]
}

// gostring copies a NUL-terminated C string.
func gostring(p uintptr) string {
	if p == 0 {
		return ""
	}
	n := 0
	for *(*byte)(ptr(p + uintptr(n))) != 0 {
		n++
	}
	return string(unsafe.Slice((*byte)(ptr(p)), n))
}
