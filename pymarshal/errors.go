package pymarshal

import (
	"errors"
	"fmt"
	"reflect"
)

// Sentinel errors. Errors returned by this package wrap one of these, so
// callers can test them with errors.Is; decoding errors are *DecodeError
// values that also carry the offset.
var (
	// ErrTruncated: the input ends in the middle of a value, or a length
	// field claims more bytes (or elements) than remain in the input.
	ErrTruncated = errors.New("pymarshal: truncated input")
	// ErrTrailingData: Unmarshal decoded one value but bytes remain.
	// (Python's marshal.loads silently ignores them.)
	ErrTrailingData = errors.New("pymarshal: trailing data after value")
	// ErrUnsupportedCode: a type code that is not plain data (code object,
	// complex, Ellipsis, StopIteration) or not a marshal type code at all.
	ErrUnsupportedCode = errors.New("pymarshal: unsupported type code")
	// ErrInvalidData: a structurally invalid value, such as a negative
	// length, an unnormalized long integer, a malformed text float or a NULL
	// where a value is required.
	ErrInvalidData = errors.New("pymarshal: invalid data")
	// ErrInvalidUTF8: a str whose bytes are not UTF-8 (lone surrogates, which
	// Python allows, excepted).
	ErrInvalidUTF8 = errors.New("pymarshal: invalid UTF-8 in str")
	// ErrInvalidRef: an 'r' reference to an index that was never assigned.
	ErrInvalidRef = errors.New("pymarshal: invalid reference")
	// ErrCycle: an 'r' reference to a container that is still being decoded,
	// that is, a self-referencing structure, which has no Go representation
	// here.
	ErrCycle = errors.New("pymarshal: reference cycle")
	// ErrUnhashable: a list, dict or set (or a tuple containing one) used as
	// a dict key or set element, which Python would refuse.
	ErrUnhashable = errors.New("pymarshal: unhashable dict key or set element")
	// ErrTooDeep: containers nested more than MaxDepth levels.
	ErrTooDeep = errors.New("pymarshal: nesting too deep")
	// ErrTooLarge: when decoding, references expand the value beyond
	// MaxRefExpansion; when encoding, a length does not fit the format's
	// 32-bit length fields.
	ErrTooLarge = errors.New("pymarshal: value too large")
)

// DecodeError is the error returned by Unmarshal. Error() reads like
// "pymarshal: truncated str at offset 17".
type DecodeError struct {
	// Offset is the byte offset in the input of the type code of the value
	// that could not be decoded (for ErrTrailingData, of the first extra byte).
	Offset int
	// Code is that type code with FLAG_REF cleared, or 0 when there is none
	// (the input ended where a value was expected, or trailing data).
	Code byte
	// Msg describes the problem.
	Msg string
	// Err is the sentinel error (ErrTruncated, ErrInvalidData, ...).
	Err error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("pymarshal: %s at offset %d", e.Msg, e.Offset)
}

// Unwrap returns the sentinel error, for errors.Is.
func (e *DecodeError) Unwrap() error { return e.Err }

// UnsupportedTypeError is returned by Marshal and Encoder.Value when given a
// Go value that has no Python equivalent.
type UnsupportedTypeError struct {
	Type reflect.Type
}

func (e *UnsupportedTypeError) Error() string {
	if e.Type == nil {
		return "pymarshal: unsupported Go type <nil>"
	}
	return "pymarshal: unsupported Go type " + e.Type.String()
}
