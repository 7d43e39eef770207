// Package pymarshal reads and writes the subset of CPython's marshal format
// that carries plain data: None, bool, int, float, str, bytes, list, tuple,
// dict, set and frozenset.
//
// The marshal format is the serialization CPython uses for .pyc files and
// exposes as the marshal module. Its decoder, marshal.loads, is written in C
// and is the fastest way to hand structured data to a Python process, which is
// why hornbeam uses it to send the WSGI environ to its Python workers and to
// read values that Python code produced with marshal.dumps(obj, 2).
//
// # Go representation of Python values
//
//	Python      Go (Unmarshal result)          Marshal also accepts
//	None        nil
//	bool        bool
//	int         int64, or *big.Int when the    int, int8..int32, uint, uint8..uint64,
//	            value does not fit in int64    *big.Int (any value)
//	float       float64                        float32
//	str         string (UTF-8)
//	bytes       []byte
//	list        List                           []any, []string
//	tuple       Tuple
//	dict        Dict (insertion order kept)    map[string]any, map[string]string
//	                                           (written with keys sorted)
//	set         Set
//	frozenset   FrozenSet
//
// Dict, Set and FrozenSet are ordered slices: Go does not deduplicate keys or
// elements, and Python does when it loads the data (later dict values win;
// note that Python considers 1, 1.0 and True equal). Dict keys and set elements
// must be hashable in Python terms: a List, Dict or Set (or a Tuple containing
// one) is rejected by both Marshal and Unmarshal with ErrUnhashable.
//
// # Strings
//
// Python str values are sequences of code points and may contain lone
// surrogates (U+D800..U+DFFF), which marshal writes in UTF-8 form with the
// "surrogatepass" error handler. Unmarshal returns such strings verbatim: the
// Go string then holds the 3-byte encoding of each surrogate (ED A0..BF xx),
// which is not valid UTF-8 for Go's unicode/utf8 package but round-trips
// through Marshal unchanged. Any other invalid UTF-8 in a Go string is
// rejected by Marshal (ErrInvalidUTF8) and replaced by U+FFFD by Encoder.Str;
// use []byte for binary data. Encoder.Latin1Str writes PEP 3333 "native
// strings", whose code points are the bytes of the Go string.
//
// # Versions and references
//
// Unmarshal reads the output of every marshal version from 0 to 4 (the
// default of Python 3.11 is 4). Versions 3 and 4 may mark objects with
// FLAG_REF and later refer back to them with the 'r' code; the Go value
// returned for a back-reference is the same Go value as the first occurrence,
// so slices reached through two references share their backing array.
// References to a container that is still being decoded (which Python writes
// for self-referencing structures such as l = []; l.append(l)) are rejected
// with ErrCycle, so Unmarshal always returns an acyclic value. Because a
// reference lets a short input describe a very large tree (each reference is
// counted at the full size of what it refers to), Unmarshal fails with
// ErrTooLarge when the input, with every reference expanded, would exceed
// len(data)+MaxRefExpansion bytes. Output of marshal.dumps(obj, 2) has no
// references and is never limited this way.
//
// Marshal and Encoder never write references; their output uses the codes of
// version 4 (short ASCII strings 'z', small tuples ')') and binary floats, and
// is accepted by marshal.loads of every Python 3.4 or later.
//
// Code objects, complex numbers, Ellipsis and StopIteration are not supported:
// Unmarshal fails with ErrUnsupportedCode for them.
//
// # Differences from marshal.loads
//
// Unmarshal accepts what CPython's marshal.loads accepts for the supported
// types (the tests check this against the real interpreter), with these
// deliberate exceptions, where it fails instead:
//
//   - bytes after the value (marshal.loads ignores them): ErrTrailingData;
//   - a NULL ('0') in place of a dict value (marshal.loads silently ends the
//     dict there): ErrInvalidData;
//   - self-referencing structures: ErrCycle;
//   - more than MaxDepth nested containers (CPython allows about 2000 nested
//     objects): ErrTooDeep;
//   - references expanding beyond MaxRefExpansion: ErrTooLarge.
//
// Like CPython, it reads the bytes of the ASCII string types ('a', 'A', 'z',
// 'Z') as Latin-1 without checking that they are ASCII, accepts the obsolete
// 64-bit integer type 'I', and rejects long integers with out-of-range or
// unnormalized digits.
package pymarshal

import "math"

// List is a Python list.
type List []any

// Tuple is a Python tuple.
type Tuple []any

// Set is a Python set. Elements keep the order in which they were decoded or
// given; duplicates are not removed (Python removes them when it loads the
// data).
type Set []any

// FrozenSet is a Python frozenset. Like Set, it is an ordered slice without
// deduplication.
type FrozenSet []any

// Dict is a Python dict: its items in order (Python dicts preserve insertion
// order). Keys are not deduplicated; when Python loads a dict with repeated
// keys, the last value wins.
type Dict []Item

// Item is one key/value pair of a Dict.
type Item struct {
	Key, Value any
}

// Get returns the value of the first item whose key equals key and whether
// such an item exists. Keys are compared with Go's ==, so look up decoded
// values with their decoded Go type (a Python int key 1 is int64(1), not 1);
// *big.Int keys compare by pointer and slice keys (Tuple, []byte) never
// match. It is a linear search.
func (d Dict) Get(key any) (any, bool) {
	for _, it := range d {
		if keyEqual(it.Key, key) {
			return it.Value, true
		}
	}
	return nil, false
}

func keyEqual(a, b any) (eq bool) {
	defer func() {
		if recover() != nil { // incomparable dynamic types
			eq = false
		}
	}()
	return a == b
}

// MaxDepth is the maximum nesting of containers (list, tuple, dict, set,
// frozenset) that Marshal, Encoder.Value and Unmarshal accept. A scalar inside
// MaxDepth nested lists is accepted; one more level fails with ErrTooDeep.
const MaxDepth = 200

// MaxRefExpansion bounds how much back-references may enlarge a value: Unmarshal
// fails with ErrTooLarge when the input, with every 'r' reference replaced by
// the encoding of the value it refers to, would be longer than
// len(data)+MaxRefExpansion bytes.
const MaxRefExpansion = 64 << 20

// Type codes of the marshal format (Python/marshal.c).
const (
	typeNull               = '0'
	typeNone               = 'N'
	typeFalse              = 'F'
	typeTrue               = 'T'
	typeStopIter           = 'S'
	typeEllipsis           = '.'
	typeInt                = 'i'
	typeInt64              = 'I' // obsolete, still read by CPython
	typeFloat              = 'f'
	typeBinaryFloat        = 'g'
	typeComplex            = 'x'
	typeBinaryComplex      = 'y'
	typeLong               = 'l'
	typeString             = 's'
	typeInterned           = 't'
	typeRef                = 'r'
	typeTuple              = '('
	typeList               = '['
	typeDict               = '{'
	typeCode               = 'c'
	typeUnicode            = 'u'
	typeUnknown            = '?'
	typeSet                = '<'
	typeFrozenSet          = '>'
	typeASCII              = 'a'
	typeASCIIInterned      = 'A'
	typeSmallTuple         = ')'
	typeShortASCII         = 'z'
	typeShortASCIIInterned = 'Z'

	flagRef = 0x80
)

// typeName describes a type code (without FLAG_REF) for error messages.
func typeName(c byte) string {
	switch c {
	case typeNull:
		return "NULL"
	case typeNone:
		return "None"
	case typeFalse, typeTrue:
		return "bool"
	case typeStopIter:
		return "StopIteration"
	case typeEllipsis:
		return "Ellipsis"
	case typeInt, typeInt64:
		return "int"
	case typeLong:
		return "long int"
	case typeFloat:
		return "text float"
	case typeBinaryFloat:
		return "float"
	case typeComplex, typeBinaryComplex:
		return "complex"
	case typeString:
		return "bytes"
	case typeInterned, typeUnicode, typeASCII, typeASCIIInterned, typeShortASCII, typeShortASCIIInterned:
		return "str"
	case typeRef:
		return "reference"
	case typeTuple, typeSmallTuple:
		return "tuple"
	case typeList:
		return "list"
	case typeDict:
		return "dict"
	case typeCode:
		return "code object"
	case typeUnknown:
		return "unknown object"
	case typeSet:
		return "set"
	case typeFrozenSet:
		return "frozenset"
	}
	return "unknown type"
}

const maxSize = math.MaxInt32 // largest length the format can carry
