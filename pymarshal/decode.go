package pymarshal

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"strconv"
	"strings"
)

// Unmarshal decodes exactly one marshal value from data, as written by
// Python's marshal.dumps with any version from 0 to 4 (or by Marshal), and
// returns its Go representation (see the package documentation).
//
// Unlike Python's marshal.loads, Unmarshal fails on bytes after the value
// (ErrTrailingData). It never panics, whatever the input: lengths are checked
// against the remaining input before anything is allocated, nesting is
// limited to MaxDepth, and the expansion of back-references to
// MaxRefExpansion. Errors are *DecodeError values wrapping one of the
// package's sentinel errors.
//
// The returned value does not alias data.
func Unmarshal(data []byte) (any, error) {
	v, _, err := unmarshal(data)
	return v, err
}

// unmarshal also returns the expanded size of the value: its encoded length
// with every reference replaced by the encoding it refers to.
func unmarshal(data []byte) (any, int, error) {
	d := decoder{data: data, limit: len(data) + MaxRefExpansion}
	v, _, err := d.value()
	if err != nil {
		return nil, 0, err
	}
	if d.pos != len(data) {
		return nil, 0, &DecodeError{Offset: d.pos, Msg: fmt.Sprintf("%d bytes of trailing data", len(data)-d.pos), Err: ErrTrailingData}
	}
	return v, len(data) + d.extra, nil
}

type decoder struct {
	data  []byte
	pos   int
	depth int
	refs  []refSlot
	// extra is how many bytes the references decoded so far add when
	// expanded; limit bounds len(data)+extra.
	extra int
	limit int
}

// refSlot is an entry of the reference table, which numbers the objects
// flagged with FLAG_REF in the order their decoding starts.
type refSlot struct {
	v        any
	size     int  // expanded encoded size of v
	hashable bool // v is hashable in Python
	done     bool // false while a container is being decoded
}

func (d *decoder) fail(off int, code byte, sentinel error, format string, args ...any) error {
	return &DecodeError{Offset: off, Code: code, Msg: fmt.Sprintf(format, args...), Err: sentinel}
}

func (d *decoder) truncated(off int, code byte) error {
	return d.fail(off, code, ErrTruncated, "truncated %s", typeName(code))
}

// need returns the next n bytes, or an ErrTruncated error for the value of
// type code starting at off.
func (d *decoder) need(n int, off int, code byte) ([]byte, error) {
	if n < 0 || n > len(d.data)-d.pos {
		return nil, d.truncated(off, code)
	}
	b := d.data[d.pos : d.pos+n : d.pos+n]
	d.pos += n
	return b, nil
}

// size reads a 4-byte length field; it must be non-negative. Callers check it
// against the remaining input.
func (d *decoder) size(off int, code byte) (int, error) {
	b, err := d.need(4, off, code)
	if err != nil {
		return 0, err
	}
	n := int32(binary.LittleEndian.Uint32(b))
	if n < 0 {
		return 0, d.fail(off, code, ErrInvalidData, "negative %s size %d", typeName(code), n)
	}
	return int(n), nil
}

// value decodes one value and reports whether it is hashable in Python.
func (d *decoder) value() (v any, hashable bool, err error) {
	off := d.pos
	if off >= len(d.data) {
		return nil, false, d.fail(off, 0, ErrTruncated, "input ends where a value was expected")
	}
	raw := d.data[off]
	d.pos++
	code := raw &^ flagRef
	flag := raw&flagRef != 0

	switch code {
	case typeNone: // singletons are never registered as references
		return nil, true, nil
	case typeTrue:
		return true, true, nil
	case typeFalse:
		return false, true, nil
	case typeNull:
		return nil, false, d.fail(off, code, ErrInvalidData, "NULL object (type '0') where a value is required")
	case typeRef:
		return d.ref(off)
	case typeTuple, typeSmallTuple, typeList, typeSet, typeFrozenSet, typeDict:
		return d.container(off, code, flag)
	}

	v, err = d.scalar(off, code)
	if err != nil {
		return nil, false, err
	}
	if flag {
		d.refs = append(d.refs, refSlot{v: v, size: d.pos - off, hashable: true, done: true})
	}
	return v, true, nil
}

// scalar decodes the body of a number, str or bytes.
func (d *decoder) scalar(off int, code byte) (any, error) {
	switch code {
	case typeInt:
		b, err := d.need(4, off, code)
		if err != nil {
			return nil, err
		}
		return int64(int32(binary.LittleEndian.Uint32(b))), nil
	case typeInt64:
		b, err := d.need(8, off, code)
		if err != nil {
			return nil, err
		}
		return int64(binary.LittleEndian.Uint64(b)), nil
	case typeLong:
		return d.long(off)
	case typeBinaryFloat:
		b, err := d.need(8, off, code)
		if err != nil {
			return nil, err
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(b)), nil
	case typeFloat:
		nb, err := d.need(1, off, code)
		if err != nil {
			return nil, err
		}
		b, err := d.need(int(nb[0]), off, code)
		if err != nil {
			return nil, err
		}
		text := string(b)
		if i := strings.IndexByte(text, 0); i >= 0 {
			text = text[:i] // CPython parses the text as a C string
		}
		f, ok := parsePyFloat(text)
		if !ok {
			return nil, d.fail(off, code, ErrInvalidData, "invalid float text %q", b)
		}
		return f, nil
	case typeString:
		n, err := d.size(off, code)
		if err != nil {
			return nil, err
		}
		b, err := d.need(n, off, code)
		if err != nil {
			return nil, err
		}
		return append([]byte{}, b...), nil
	case typeUnicode, typeInterned:
		n, err := d.size(off, code)
		if err != nil {
			return nil, err
		}
		b, err := d.need(n, off, code)
		if err != nil {
			return nil, err
		}
		s := string(b)
		if !validPyUTF8(s) {
			return nil, d.fail(off, code, ErrInvalidUTF8, "invalid UTF-8 in str")
		}
		return s, nil
	case typeASCII, typeASCIIInterned:
		n, err := d.size(off, code)
		if err != nil {
			return nil, err
		}
		b, err := d.need(n, off, code)
		if err != nil {
			return nil, err
		}
		return latin1(b), nil
	case typeShortASCII, typeShortASCIIInterned:
		nb, err := d.need(1, off, code)
		if err != nil {
			return nil, err
		}
		b, err := d.need(int(nb[0]), off, code)
		if err != nil {
			return nil, err
		}
		return latin1(b), nil
	case typeStopIter, typeEllipsis, typeComplex, typeBinaryComplex, typeCode, typeUnknown:
		return nil, d.fail(off, code, ErrUnsupportedCode, "unsupported type code %q (%s)", code, typeName(code))
	}
	return nil, d.fail(off, code, ErrUnsupportedCode, "unknown type code %q", code)
}

// latin1 converts the bytes of a TYPE_ASCII string to a Go string. CPython
// does not check that they are ASCII: it builds the str from them as Latin-1
// code points, and so does latin1.
func latin1(b []byte) string {
	high := 0
	for _, c := range b {
		if c >= 0x80 {
			high++
		}
	}
	if high == 0 {
		return string(b)
	}
	var sb strings.Builder
	sb.Grow(len(b) + high)
	for _, c := range b {
		if c < 0x80 {
			sb.WriteByte(c)
		} else {
			sb.WriteByte(0xC0 | c>>6)
			sb.WriteByte(0x80 | c&0x3F)
		}
	}
	return sb.String()
}

// long decodes type 'l': a signed 32-bit digit count n (the sign of n is the
// sign of the number) followed by |n| little-endian 15-bit digits stored in
// 16 bits each, least significant first. Like CPython, it rejects digits
// with the high bit set and a zero most significant digit.
func (d *decoder) long(off int) (any, error) {
	b, err := d.need(4, off, typeLong)
	if err != nil {
		return nil, err
	}
	n := int64(int32(binary.LittleEndian.Uint32(b)))
	if n == 0 {
		return int64(0), nil
	}
	if n == math.MinInt32 {
		return nil, d.fail(off, typeLong, ErrInvalidData, "long int size out of range")
	}
	neg := n < 0
	if neg {
		n = -n
	}
	digits, err := d.need(2*int(n), off, typeLong)
	if err != nil {
		return nil, err
	}
	for i := 0; i < len(digits); i += 2 {
		if digits[i+1]&0x80 != 0 {
			return nil, d.fail(off, typeLong, ErrInvalidData, "long int digit out of range")
		}
	}
	if digits[len(digits)-2] == 0 && digits[len(digits)-1] == 0 {
		return nil, d.fail(off, typeLong, ErrInvalidData, "unnormalized long int")
	}
	if n <= 4 { // at most 60 bits
		var m uint64
		for i := int(n) - 1; i >= 0; i-- {
			m = m<<15 | uint64(binary.LittleEndian.Uint16(digits[2*i:]))
		}
		if neg {
			return -int64(m), nil
		}
		return int64(m), nil
	}
	const W = bits.UintSize
	words := make([]big.Word, (15*int(n)+W-1)/W)
	for i := range int(n) {
		dg := big.Word(binary.LittleEndian.Uint16(digits[2*i:]))
		idx, sh := 15*i/W, 15*i%W
		words[idx] |= dg << sh
		if sh > W-15 {
			words[idx+1] |= dg >> (W - sh)
		}
	}
	x := new(big.Int).SetBits(words)
	if neg {
		x.Neg(x)
	}
	if x.IsInt64() {
		return x.Int64(), nil
	}
	return x, nil
}

const pyNaN = 0x7ff8000000000000

// parsePyFloat parses the text of a type 'f' float as CPython's
// PyOS_string_to_double does: an optional sign, then decimal digits with an
// optional point and exponent, or inf, infinity or nan in any case. Overflow
// gives an infinity.
func parsePyFloat(s string) (float64, bool) {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	neg := i > 0 && s[0] == '-'
	switch strings.ToLower(s[i:]) {
	case "inf", "infinity":
		if neg {
			return math.Inf(-1), true
		}
		return math.Inf(1), true
	case "nan": // CPython's Py_NAN, with the sign if any
		if neg {
			return math.Float64frombits(pyNaN | 1<<63), true
		}
		return math.Float64frombits(pyNaN), true
	}
	digits := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			digits++
		}
	}
	if digits == 0 {
		return 0, false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		exp := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			exp++
		}
		if exp == 0 {
			return 0, false
		}
	}
	if i != len(s) {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); !ok || ne.Err != strconv.ErrRange {
			return 0, false
		}
	}
	return f, true
}

// ref decodes the index of an 'r' reference.
func (d *decoder) ref(off int) (any, bool, error) {
	b, err := d.need(4, off, typeRef)
	if err != nil {
		return nil, false, err
	}
	n := int32(binary.LittleEndian.Uint32(b))
	if n < 0 || int(n) >= len(d.refs) {
		return nil, false, d.fail(off, typeRef, ErrInvalidRef, "reference to undefined object %d", n)
	}
	r := d.refs[n]
	if !r.done {
		return nil, false, d.fail(off, typeRef, ErrCycle, "reference to object %d, a container that is still being decoded", n)
	}
	d.extra += r.size - (d.pos - off)
	if d.extra > d.limit-len(d.data) {
		return nil, false, d.fail(off, typeRef, ErrTooLarge, "references expand the value beyond %d bytes", d.limit)
	}
	return r.v, r.hashable, nil
}

// container decodes a tuple, list, set, frozenset or dict. As in CPython, its
// reference slot is reserved before its elements are decoded.
func (d *decoder) container(off int, code byte, flag bool) (v any, hashable bool, err error) {
	d.depth++
	if d.depth > MaxDepth {
		return nil, false, d.fail(off, code, ErrTooDeep, "%s nested more than %d containers deep", typeName(code), MaxDepth)
	}
	defer func() { d.depth-- }()

	n := 0
	switch code {
	case typeSmallTuple:
		b, err := d.need(1, off, code)
		if err != nil {
			return nil, false, err
		}
		n = int(b[0])
	case typeDict:
	default:
		if n, err = d.size(off, code); err != nil {
			return nil, false, err
		}
	}
	// Every element takes at least one byte.
	if n > len(d.data)-d.pos {
		return nil, false, d.fail(off, code, ErrTruncated, "truncated %s: %d elements announced, %d bytes left", typeName(code), n, len(d.data)-d.pos)
	}

	slot := -1
	if flag {
		slot = len(d.refs)
		d.refs = append(d.refs, refSlot{})
	}
	extra0 := d.extra

	if code == typeDict {
		v, err = d.dict(off)
		hashable = false
	} else {
		// Grow on demand: n is bounded by the input length, but nested
		// containers could each claim most of it.
		elems := make([]any, 0, min(n, 1024))
		hashable = code == typeFrozenSet || code == typeTuple || code == typeSmallTuple
		for range n {
			el, h, err := d.value()
			if err != nil {
				return nil, false, err
			}
			if !h {
				switch code {
				case typeSet, typeFrozenSet:
					return nil, false, d.fail(off, code, ErrUnhashable, "unhashable %s element", typeName(code))
				case typeTuple, typeSmallTuple:
					hashable = false
				}
			}
			elems = append(elems, el)
		}
		switch code {
		case typeList:
			v = List(elems)
		case typeSet:
			v = Set(elems)
		case typeFrozenSet:
			v = FrozenSet(elems)
		default:
			v = Tuple(elems)
		}
	}
	if err != nil {
		return nil, false, err
	}
	if slot >= 0 {
		d.refs[slot] = refSlot{v: v, size: d.pos - off + d.extra - extra0, hashable: hashable, done: true}
	}
	return v, hashable, nil
}

// dict decodes key/value pairs up to the NULL marker '0'.
func (d *decoder) dict(off int) (Dict, error) {
	items := Dict{}
	for {
		if d.pos >= len(d.data) {
			return nil, d.truncated(off, typeDict)
		}
		if d.data[d.pos]&^flagRef == typeNull {
			d.pos++
			return items, nil
		}
		keyOff := d.pos
		k, h, err := d.value()
		if err != nil {
			return nil, err
		}
		if !h {
			return nil, d.fail(keyOff, d.data[keyOff]&^flagRef, ErrUnhashable, "unhashable dict key")
		}
		// CPython silently ends the dict when the value is NULL; a NULL
		// here is an error (from d.value).
		val, _, err := d.value()
		if err != nil {
			return nil, err
		}
		items = append(items, Item{Key: k, Value: val})
	}
}
