package cpython

import (
	"fmt"

	"github.com/hornbeam-go/hornbeam/pymarshal"
)

// FromGo builds a Python object from a Go value through the marshal format
// (the types package pymarshal encodes: nil, bool, ints, float64, string,
// []byte, slices, maps, pymarshal.Tuple...).
func (py *Interp) FromGo(v any) (Object, error) {
	b, err := pymarshal.Marshal(v)
	if err != nil {
		return 0, err
	}
	return py.FromMarshal(b)
}

// ToGo converts a Python object of the marshal-able types to Go values (see
// pymarshal.Unmarshal).
func (py *Interp) ToGo(o Object) (any, error) {
	b := call2(py.a.MarshalWriteObjectToString, uintptr(o), 4)
	if b == 0 {
		return nil, py.errOr("marshal")
	}
	defer call1(py.a.DecRef, b)
	data, ok := py.Bytes(Object(b))
	if !ok {
		return nil, fmt.Errorf("cpython: marshal gave no bytes")
	}
	return pymarshal.Unmarshal(data)
}
