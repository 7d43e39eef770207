package cpython

import (
	"errors"
	"strings"
	"unsafe"
)

// Error is a Python exception fetched as a Go error.
type Error struct {
	Type      string // "ValueError", "json.decoder.JSONDecodeError"
	Message   string // str(exception)
	Traceback string // traceback.format_exception's text, ending with "Type: message\n"
}

// Error is the traceback (its last line is "Type: message").
func (e *Error) Error() string {
	if e.Traceback != "" {
		return strings.TrimRight(e.Traceback, "\n")
	}
	return e.Summary()
}

// Summary is "Type: message".
func (e *Error) Summary() string {
	if e.Message == "" {
		return e.Type
	}
	return e.Type + ": " + e.Message
}

// IsType reports whether the exception's class is named name ("SystemExit",
// "ModuleNotFoundError"; subclasses do not count).
func (e *Error) IsType(name string) bool { return e.Type == name }

func unsafePtr(b *byte) unsafe.Pointer { return unsafe.Pointer(b) }

// Err fetches and clears the current Python exception as an *Error (nil if
// none is set). It never calls PyErr_Print: on a thread that is not the
// main one, PyErr_Print of a SystemExit finalises the interpreter and hangs.
func (py *Interp) Err() error {
	if call0(py.a.ErrOccurred) == 0 {
		return nil
	}
	return py.fetch()
}

func (py *Interp) fetch() error {
	var t, v, tb uintptr
	call3(py.a.ErrFetch, uintptr(unsafe.Pointer(&t)), uintptr(unsafe.Pointer(&v)), uintptr(unsafe.Pointer(&tb)))
	if t == 0 {
		return &Error{Type: "SystemError", Message: "an error was reported without an exception set"}
	}
	call3(py.a.ErrNormalize, uintptr(unsafe.Pointer(&t)), uintptr(unsafe.Pointer(&v)), uintptr(unsafe.Pointer(&tb)))
	if v != 0 && tb != 0 {
		call2(py.a.ExceptionSetTraceback, v, tb)
	}
	e := &Error{Type: "exception"}
	if py.formatExc != 0 {
		args := [3]uintptr{t, v, tb}
		for i := range args {
			if args[i] == 0 {
				args[i] = py.none
			}
		}
		r, err := py.callN(py.formatExc, args[:])
		if err == nil {
			s, serr := py.GoString(r)
			py.DecRef(r)
			if serr == nil {
				parts := strings.SplitN(s, "\x00", 3)
				if len(parts) == 3 {
					e = &Error{Type: parts[0], Message: parts[1], Traceback: parts[2]}
				}
			}
		} else {
			call0(py.a.ErrClear)
		}
	}
	for _, o := range []uintptr{t, v, tb} {
		if o != 0 {
			call1(py.a.DecRef, o)
		}
	}
	return e
}

// errOr returns the current exception, or a generic error when a call
// failed without one.
func (py *Interp) errOr(what string) error {
	if err := py.Err(); err != nil {
		return err
	}
	return errors.New("cpython: " + what + " failed")
}

// None returns Python's None (a borrowed reference).
func (py *Interp) None() Object { return Object(py.none) }

// IncRef adds a reference to o.
func (py *Interp) IncRef(o Object) {
	if o != 0 {
		call1(py.a.IncRef, uintptr(o))
	}
}

// DecRef drops a reference to o (0 is ignored).
func (py *Interp) DecRef(o Object) {
	if o != 0 {
		call1(py.a.DecRef, uintptr(o))
	}
}

// FromMarshal builds the object that marshal.loads would make of data.
func (py *Interp) FromMarshal(data []byte) (Object, error) {
	if len(data) == 0 {
		return 0, errors.New("cpython: empty marshal data")
	}
	o := call2(py.a.MarshalReadObjectFromString, uintptr(unsafe.Pointer(&data[0])), uintptr(len(data)))
	if o == 0 {
		return 0, py.errOr("marshal")
	}
	return Object(o), nil
}

// Exec runs Python source in the namespace globals (a dict).
func (py *Interp) Exec(src, filename string, globals Object) error {
	code := call3(py.a.CompileString, uintptr(unsafePtr(cstring(src))), uintptr(unsafePtr(cstring(filename))), 257) // Py_file_input
	if code == 0 {
		return py.errOr("compile")
	}
	r := call3(py.a.EvalCode, code, uintptr(globals), uintptr(globals))
	call1(py.a.DecRef, code)
	if r == 0 {
		return py.errOr("exec")
	}
	call1(py.a.DecRef, r)
	return nil
}

// NewDict returns a new empty dict.
func (py *Interp) NewDict() (Object, error) {
	d := call0(py.a.DictNew)
	if d == 0 {
		return 0, py.errOr("dict")
	}
	return Object(d), nil
}

// Item returns d[key] for a dict d (a new reference), or an error if absent.
func (py *Interp) Item(d Object, key string) (Object, error) {
	o := call2(py.a.DictGetItemString, uintptr(d), uintptr(unsafePtr(cstring(key))))
	if o == 0 {
		if err := py.Err(); err != nil {
			return 0, err
		}
		return 0, &Error{Type: "KeyError", Message: key}
	}
	call1(py.a.IncRef, o)
	return Object(o), nil
}

// SetItem sets d[key] = v for a dict d.
func (py *Interp) SetItem(d Object, key string, v Object) error {
	if call3(py.a.DictSetItemString, uintptr(d), uintptr(unsafePtr(cstring(key))), uintptr(v)) != 0 {
		return py.errOr("dict assignment")
	}
	return nil
}

// Import imports a module by its dotted name.
func (py *Interp) Import(name string) (Object, error) {
	m := call1(py.a.ImportModule, uintptr(unsafePtr(cstring(name))))
	if m == 0 {
		return 0, py.errOr("import")
	}
	return Object(m), nil
}

// GetAttr returns o.name.
func (py *Interp) GetAttr(o Object, name string) (Object, error) {
	r := call2(py.a.GetAttrString, uintptr(o), uintptr(unsafePtr(cstring(name))))
	if r == 0 {
		return 0, py.errOr("getattr")
	}
	return Object(r), nil
}

// SetAttr sets o.name = v.
func (py *Interp) SetAttr(o Object, name string, v Object) error {
	if call3(py.a.SetAttrString, uintptr(o), uintptr(unsafePtr(cstring(name))), uintptr(v)) != 0 {
		return py.errOr("setattr")
	}
	return nil
}

// CallOneArg returns fn(arg): the cheapest call (one C call on 3.9+).
func (py *Interp) CallOneArg(fn, arg Object) (Object, error) {
	var r uintptr
	if py.a.CallOneArg != 0 {
		r = call2(py.a.CallOneArg, uintptr(fn), uintptr(arg))
	} else {
		return py.callN(fn, []uintptr{uintptr(arg)})
	}
	if r == 0 {
		return 0, py.errOr("call")
	}
	return Object(r), nil
}

// Call returns fn(*args).
func (py *Interp) Call(fn Object, args ...Object) (Object, error) {
	a := make([]uintptr, len(args))
	for i, o := range args {
		a[i] = uintptr(o)
	}
	return py.callN(fn, a)
}

func (py *Interp) callN(fn Object, args []uintptr) (Object, error) {
	var r uintptr
	if py.a.Vectorcall != 0 {
		var p uintptr
		if len(args) > 0 {
			p = uintptr(unsafe.Pointer(&args[0]))
		}
		r = call4(py.a.Vectorcall, uintptr(fn), p, uintptr(len(args)), 0)
	} else {
		t := call1(py.a.TupleNew, uintptr(len(args)))
		if t == 0 {
			return 0, py.errOr("tuple")
		}
		for i, o := range args {
			call1(py.a.IncRef, o) // PyTuple_SetItem steals it
			call3(py.a.TupleSetItem, t, uintptr(i), o)
		}
		r = call2(py.a.CallObject, uintptr(fn), t)
		call1(py.a.DecRef, t)
	}
	if r == 0 {
		return 0, py.errOr("call")
	}
	return Object(r), nil
}

// Bytes returns the buffer of a bytes object without copying it: valid
// while o is alive (it may be read after Leave if a reference is kept).
// ok is false (and no exception is left set) when o is not a bytes.
func (py *Interp) Bytes(o Object) (b []byte, ok bool) {
	var p uintptr
	var n int
	if call3(py.a.BytesAsStringAndSize, uintptr(o), uintptr(unsafe.Pointer(&p)), uintptr(unsafe.Pointer(&n))) != 0 {
		call0(py.a.ErrClear)
		return nil, false
	}
	if n == 0 {
		return []byte{}, true
	}
	return unsafe.Slice((*byte)(ptr(p)), n), true
}

// NewBytes returns a bytes object holding a copy of b.
func (py *Interp) NewBytes(b []byte) (Object, error) {
	var p uintptr
	if len(b) > 0 {
		p = uintptr(unsafe.Pointer(&b[0]))
	}
	o := call2(py.a.BytesFromStringAndSize, p, uintptr(len(b)))
	if o == 0 {
		return 0, py.errOr("bytes")
	}
	return Object(o), nil
}

// NewStr returns a str holding s (UTF-8).
func (py *Interp) NewStr(s string) (Object, error) {
	b := []byte(s)
	var p uintptr
	if len(b) > 0 {
		p = uintptr(unsafe.Pointer(&b[0]))
	} else {
		p = uintptr(unsafePtr(cstring("")))
	}
	o := call2(py.a.UnicodeFromStringAndSize, p, uintptr(len(b)))
	if o == 0 {
		return 0, py.errOr("str")
	}
	return Object(o), nil
}

// GoString copies a str's text (UTF-8).
func (py *Interp) GoString(o Object) (string, error) {
	var n int
	p := call2(py.a.UnicodeAsUTF8AndSize, uintptr(o), uintptr(unsafe.Pointer(&n)))
	if p == 0 {
		return "", py.errOr("str conversion")
	}
	return string(unsafe.Slice((*byte)(ptr(p)), n)), nil
}

// NewInt returns an int.
func (py *Interp) NewInt(i int64) (Object, error) {
	o := call1(py.a.LongFromLongLong, uintptr(i))
	if o == 0 {
		return 0, py.errOr("int")
	}
	return Object(o), nil
}

// Int converts an int.
func (py *Interp) Int(o Object) (int64, error) {
	r := int64(call1(py.a.LongAsLongLong, uintptr(o)))
	if r == -1 {
		if err := py.Err(); err != nil {
			return 0, err
		}
	}
	return r, nil
}

// TupleItem returns t[i] of a tuple t as a borrowed reference (0 and no
// exception left set when t is not a tuple or i is out of range).
func (py *Interp) TupleItem(t Object, i int) Object {
	o := call2(py.a.TupleGetItem, uintptr(t), uintptr(i))
	if o == 0 {
		call0(py.a.ErrClear)
	}
	return Object(o)
}

// TupleLen returns len(t), or -1 (no exception left set) if t is not a tuple.
func (py *Interp) TupleLen(t Object) int {
	n := int(call1(py.a.TupleSize, uintptr(t)))
	if n < 0 {
		call0(py.a.ErrClear)
	}
	return n
}

// SetError sets a RuntimeError (or OSError) as the current exception: for a
// callback from Python into Go that fails.
func (py *Interp) SetError(osError bool, msg string) {
	exc := py.a.excRuntimeError
	if osError {
		exc = py.a.excOSError
	}
	call2(py.a.ErrSetString, loadWord(exc), uintptr(unsafePtr(cstring(msg))))
}

// Run executes src in a fresh namespace holding the names of vars (each a
// marshal-encodable Go value, see pymarshal) and returns the namespace's
// "result" (None if unset). For set-up code and tests, not hot paths.
func (py *Interp) Run(src string, vars map[string]any) (Object, error) {
	g, err := py.NewDict()
	if err != nil {
		return 0, err
	}
	defer py.DecRef(g)
	b, err := py.Item(py.globals, "__builtins__")
	if err != nil {
		return 0, err
	}
	err = py.SetItem(g, "__builtins__", b)
	py.DecRef(b)
	if err != nil {
		return 0, err
	}
	for k, v := range vars {
		o, err := py.FromGo(v)
		if err != nil {
			return 0, err
		}
		err = py.SetItem(g, k, o)
		py.DecRef(o)
		if err != nil {
			return 0, err
		}
	}
	if err := py.Exec(src, "<hornbeam>", g); err != nil {
		return 0, err
	}
	r, err := py.Item(g, "result")
	if err != nil {
		py.IncRef(py.None())
		return py.None(), nil
	}
	return r, nil
}
