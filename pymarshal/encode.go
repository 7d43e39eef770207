package pymarshal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/big"
	"math/bits"
	"reflect"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Marshal returns the marshal encoding of v, which Python reads with
// marshal.loads. See the package documentation for the accepted Go types.
// Strings must be UTF-8 (encoded lone surrogates allowed); use []byte for
// binary data. An unsupported Go type yields an *UnsupportedTypeError.
func Marshal(v any) ([]byte, error) {
	return AppendMarshal(nil, v)
}

// AppendMarshal appends the marshal encoding of v to dst and returns the
// extended buffer, like Marshal. Given a dst with enough capacity and a value
// without Go maps (which are sorted through a temporary slice), it does not
// allocate. On error it returns dst unchanged.
func AppendMarshal(dst []byte, v any) ([]byte, error) {
	e := Encoder{buf: dst}
	if err := e.Value(v); err != nil {
		return dst, err
	}
	return e.buf, nil
}

// An Encoder writes marshal data into a reusable buffer. It is meant for hot
// paths such as building the WSGI environ of every request: its methods for
// single values append to the buffer without allocating once the buffer has
// grown to its working size.
//
// Containers are written with a header followed by their elements:
// BeginDict, then alternating keys and values, then EndDict; BeginList(n) or
// BeginTuple(n), then exactly n values. The Encoder does not check that the
// calls form a well-formed value; Python's marshal.loads will reject data
// that does not.
//
// The zero Encoder is ready to use. An Encoder must not be used from several
// goroutines at once.
type Encoder struct {
	buf []byte
	err error
}

// Reset empties the buffer, keeping its capacity, and clears Err.
func (e *Encoder) Reset() {
	e.buf = e.buf[:0]
	e.err = nil
}

// Data returns the encoded bytes. The slice aliases the Encoder's buffer: it
// is valid until the next call that modifies the Encoder.
func (e *Encoder) Data() []byte { return e.buf }

// Err returns the first error met by a method that cannot report one itself
// (Str, Latin1Str, Bytes, BeginList, BeginTuple given a length that does not
// fit the format's 32-bit length fields); such a method writes nothing, so the
// data is unusable when Err is not nil. Reset clears it.
func (e *Encoder) Err() error { return e.err }

func (e *Encoder) fail(err error) {
	if e.err == nil {
		e.err = err
	}
}

// None writes Python None.
func (e *Encoder) None() { e.buf = append(e.buf, typeNone) }

// Bool writes True or False.
func (e *Encoder) Bool(b bool) {
	if b {
		e.buf = append(e.buf, typeTrue)
	} else {
		e.buf = append(e.buf, typeFalse)
	}
}

// Int writes a Python int: type 'i' when i fits in 32 bits, otherwise type
// 'l' (15-bit digits), as CPython does.
func (e *Encoder) Int(i int64) { e.buf = appendInt(e.buf, i) }

// Float writes a Python float in binary form (type 'g'), bit for bit: NaN
// payloads, infinities and -0.0 are preserved.
func (e *Encoder) Float(f float64) {
	e.buf = append(e.buf, typeBinaryFloat)
	e.buf = binary.LittleEndian.AppendUint64(e.buf, math.Float64bits(f))
}

// Bytes writes a Python bytes object.
func (e *Encoder) Bytes(b []byte) {
	if len(b) > maxSize {
		e.fail(fmt.Errorf("pymarshal: bytes of length %d: %w", len(b), ErrTooLarge))
		return
	}
	e.buf = appendSize(append(e.buf, typeString), len(b))
	e.buf = append(e.buf, b...)
}

// Str writes a Python str holding the text of s, which should be UTF-8.
//
// Str never writes data that Python rejects: each byte of s that is not part
// of a valid UTF-8 sequence is written as U+FFFD, the replacement character
// (Str("a\xffb") gives Python 'a\ufffdb'). The 3-byte
// encodings of lone surrogates (U+D800..U+DFFF), which Unmarshal produces for
// Python strings containing them, are kept. Use Value (or Marshal) to get an
// error instead of a replacement, and Latin1Str for byte strings that are not
// text.
//
// Pure ASCII strings are written with the compact ASCII types ('z' below 256
// bytes, 'a' otherwise), others as UTF-8 (type 'u').
func (e *Encoder) Str(s string) {
	switch {
	case isASCII(s):
		e.ascii(s)
	case utf8.ValidString(s):
		e.utf8Str(s, len(s))
	default:
		n, _ := sanitizedLen(s)
		if !e.checkLen(n, "str") {
			return
		}
		e.buf = appendSize(append(e.buf, typeUnicode), n)
		e.buf = appendSanitized(e.buf, s)
	}
}

// Latin1Str writes a Python str whose code points are the bytes of b, the
// "native string" of PEP 3333 (WSGI): byte 0xE9 becomes U+00E9 'é'. It is the
// right method for HTTP header values, the request path and other data that
// arrives as bytes. Every byte string is valid, so nothing is ever replaced.
//
// ASCII strings are written as 'z' (below 256 bytes) or 'a'; others as 'u'
// holding the UTF-8 encoding of the code points.
func (e *Encoder) Latin1Str(b string) {
	high := countHigh(b)
	if high == 0 {
		e.ascii(b)
		return
	}
	n := len(b) + high
	if !e.checkLen(n, "str") {
		return
	}
	e.buf = appendSize(append(e.buf, typeUnicode), n)
	e.buf = slices.Grow(e.buf, n)
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c < 0x80 {
			e.buf = append(e.buf, c)
		} else {
			e.buf = append(e.buf, 0xC0|c>>6, 0x80|c&0x3F)
		}
	}
}

// BeginDict starts a dict ('{'). Write alternating keys and values, then call
// EndDict. Keys must be hashable Python values.
func (e *Encoder) BeginDict() { e.buf = append(e.buf, typeDict) }

// EndDict ends the dict started by BeginDict (it writes the NULL marker '0').
func (e *Encoder) EndDict() { e.buf = append(e.buf, typeNull) }

// BeginList starts a list of n elements; write exactly n values after it.
func (e *Encoder) BeginList(n int) {
	if !e.checkLen(n, "list") {
		return
	}
	e.buf = appendSize(append(e.buf, typeList), n)
}

// BeginTuple starts a tuple of n elements; write exactly n values after it.
func (e *Encoder) BeginTuple(n int) {
	if !e.checkLen(n, "tuple") {
		return
	}
	e.buf = appendTupleHeader(e.buf, n)
}

func (e *Encoder) checkLen(n int, what string) bool {
	if n < 0 || n > maxSize {
		e.fail(fmt.Errorf("pymarshal: %s of length %d: %w", what, n, ErrTooLarge))
		return false
	}
	return true
}

func (e *Encoder) ascii(s string) {
	if len(s) < 256 {
		e.buf = append(e.buf, typeShortASCII, byte(len(s)))
		e.buf = append(e.buf, s...)
		return
	}
	if !e.checkLen(len(s), "str") {
		return
	}
	e.buf = appendSize(append(e.buf, typeASCII), len(s))
	e.buf = append(e.buf, s...)
}

func (e *Encoder) utf8Str(s string, n int) {
	if !e.checkLen(n, "str") {
		return
	}
	e.buf = appendSize(append(e.buf, typeUnicode), n)
	e.buf = append(e.buf, s...)
}

// Value writes any supported Go value (see the package documentation), like
// Marshal. Unlike Str it rejects strings that are not UTF-8 (ErrInvalidUTF8).
// On error nothing is written: the buffer is restored to its previous length.
func (e *Encoder) Value(v any) error {
	start := len(e.buf)
	if _, err := e.value(v, 0); err != nil {
		e.buf = e.buf[:start]
		return err
	}
	return nil
}

// value writes v and reports whether it is hashable in Python.
func (e *Encoder) value(v any, depth int) (hashable bool, err error) {
	switch x := v.(type) {
	case nil:
		e.None()
	case bool:
		e.Bool(x)
	case int:
		e.Int(int64(x))
	case int8:
		e.Int(int64(x))
	case int16:
		e.Int(int64(x))
	case int32:
		e.Int(int64(x))
	case int64:
		e.Int(x)
	case uint:
		e.uint(uint64(x))
	case uint8:
		e.Int(int64(x))
	case uint16:
		e.Int(int64(x))
	case uint32:
		e.Int(int64(x))
	case uint64:
		e.uint(x)
	case float32:
		e.Float(float64(x))
	case float64:
		e.Float(x)
	case *big.Int:
		if x == nil {
			return false, errors.New("pymarshal: nil *big.Int")
		}
		if err := e.bigInt(x); err != nil {
			return false, err
		}
	case string:
		if err := e.strictStr(x); err != nil {
			return false, err
		}
	case []byte:
		if err := e.lenErr(len(x), "bytes"); err != nil {
			return false, err
		}
		e.Bytes(x)
	case List:
		return false, e.seq(typeList, x, depth)
	case []any:
		return false, e.seq(typeList, x, depth)
	case Tuple:
		return e.tuple(x, depth)
	case Set:
		return false, e.seq(typeSet, x, depth)
	case FrozenSet:
		return true, e.seq(typeFrozenSet, x, depth)
	case []string:
		if depth >= MaxDepth {
			return false, errTooDeepEnc
		}
		if err := e.lenErr(len(x), "list"); err != nil {
			return false, err
		}
		e.BeginList(len(x))
		for _, s := range x {
			if err := e.strictStr(s); err != nil {
				return false, err
			}
		}
		return false, nil
	case Dict:
		if depth >= MaxDepth {
			return false, errTooDeepEnc
		}
		e.BeginDict()
		for _, it := range x {
			h, err := e.value(it.Key, depth+1)
			if err != nil {
				return false, err
			}
			if !h {
				return false, unhashableEnc("dict key", it.Key)
			}
			if _, err := e.value(it.Value, depth+1); err != nil {
				return false, err
			}
		}
		e.EndDict()
		return false, nil
	case map[string]any:
		if depth >= MaxDepth {
			return false, errTooDeepEnc
		}
		e.BeginDict()
		for _, k := range slices.Sorted(maps.Keys(x)) {
			if err := e.strictStr(k); err != nil {
				return false, err
			}
			if _, err := e.value(x[k], depth+1); err != nil {
				return false, err
			}
		}
		e.EndDict()
		return false, nil
	case map[string]string:
		if depth >= MaxDepth {
			return false, errTooDeepEnc
		}
		e.BeginDict()
		for _, k := range slices.Sorted(maps.Keys(x)) {
			if err := e.strictStr(k); err != nil {
				return false, err
			}
			if err := e.strictStr(x[k]); err != nil {
				return false, err
			}
		}
		e.EndDict()
		return false, nil
	default:
		return false, &UnsupportedTypeError{Type: reflect.TypeOf(v)}
	}
	return true, nil
}

var errTooDeepEnc = fmt.Errorf("pymarshal: containers nested more than %d deep (or a cycle): %w", MaxDepth, ErrTooDeep)

func unhashableEnc(what string, v any) error {
	return fmt.Errorf("pymarshal: %s of Go type %T: %w", what, v, ErrUnhashable)
}

func (e *Encoder) lenErr(n int, what string) error {
	if n > maxSize {
		return fmt.Errorf("pymarshal: %s of length %d: %w", what, n, ErrTooLarge)
	}
	return nil
}

// seq writes a list, set or frozenset.
func (e *Encoder) seq(code byte, x []any, depth int) error {
	if depth >= MaxDepth {
		return errTooDeepEnc
	}
	if err := e.lenErr(len(x), typeName(code)); err != nil {
		return err
	}
	e.buf = appendSize(append(e.buf, code), len(x))
	for _, el := range x {
		h, err := e.value(el, depth+1)
		if err != nil {
			return err
		}
		if !h && code != typeList {
			return unhashableEnc(typeName(code)+" element", el)
		}
	}
	return nil
}

func (e *Encoder) tuple(x Tuple, depth int) (bool, error) {
	if depth >= MaxDepth {
		return false, errTooDeepEnc
	}
	if err := e.lenErr(len(x), "tuple"); err != nil {
		return false, err
	}
	e.buf = appendTupleHeader(e.buf, len(x))
	hashable := true
	for _, el := range x {
		h, err := e.value(el, depth+1)
		if err != nil {
			return false, err
		}
		hashable = hashable && h
	}
	return hashable, nil
}

func (e *Encoder) strictStr(s string) error {
	if isASCII(s) {
		if err := e.lenErr(len(s), "str"); err != nil {
			return err
		}
		e.ascii(s)
		return nil
	}
	if !validPyUTF8(s) {
		q := s
		if len(q) > 40 {
			q = q[:40] + "..."
		}
		return fmt.Errorf("pymarshal: string %s: %w (use []byte for binary data, Encoder.Latin1Str for byte strings)", strconv.Quote(q), ErrInvalidUTF8)
	}
	if err := e.lenErr(len(s), "str"); err != nil {
		return err
	}
	e.utf8Str(s, len(s))
	return nil
}

func (e *Encoder) uint(u uint64) {
	if u <= math.MaxInt64 {
		e.Int(int64(u))
		return
	}
	e.buf = appendLong(e.buf, false, u)
}

func (e *Encoder) bigInt(x *big.Int) error {
	if x.IsInt64() {
		e.Int(x.Int64())
		return nil
	}
	words := x.Bits()
	n := (x.BitLen() + 14) / 15
	if n > maxSize {
		return fmt.Errorf("pymarshal: int of %d bits: %w", x.BitLen(), ErrTooLarge)
	}
	size := int32(n)
	if x.Sign() < 0 {
		size = -size
	}
	e.buf = append(e.buf, typeLong)
	e.buf = binary.LittleEndian.AppendUint32(e.buf, uint32(size))
	e.buf = slices.Grow(e.buf, 2*n)
	for i := range n {
		d := digitAt(words, 15*i)
		e.buf = append(e.buf, byte(d), byte(d>>8))
	}
	return nil
}

// digitAt returns the 15 bits of the magnitude w starting at bit off.
func digitAt(w []big.Word, off int) uint {
	const W = bits.UintSize
	idx, sh := off/W, off%W
	v := uint(w[idx]) >> sh
	if sh > W-15 && idx+1 < len(w) {
		v |= uint(w[idx+1]) << (W - sh)
	}
	return v & 0x7fff
}

func appendInt(b []byte, i int64) []byte {
	if i == int64(int32(i)) {
		b = append(b, typeInt)
		return binary.LittleEndian.AppendUint32(b, uint32(i))
	}
	m := uint64(i)
	if i < 0 {
		m = -m // also right for math.MinInt64
	}
	return appendLong(b, i < 0, m)
}

// appendLong writes a non-zero magnitude m as type 'l'.
func appendLong(b []byte, neg bool, m uint64) []byte {
	n := (bits.Len64(m) + 14) / 15
	size := int32(n)
	if neg {
		size = -size
	}
	b = append(b, typeLong)
	b = binary.LittleEndian.AppendUint32(b, uint32(size))
	for ; m != 0; m >>= 15 {
		d := m & 0x7fff
		b = append(b, byte(d), byte(d>>8))
	}
	return b
}

func appendSize(b []byte, n int) []byte {
	return binary.LittleEndian.AppendUint32(b, uint32(n))
}

func appendTupleHeader(b []byte, n int) []byte {
	if n < 256 {
		return append(b, typeSmallTuple, byte(n))
	}
	return appendSize(append(b, typeTuple), n)
}

const highBits = 0x8080808080808080

func isASCII(s string) bool {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if binary.LittleEndian.Uint64([]byte(s[i:i+8]))&highBits != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// countHigh returns the number of bytes >= 0x80 in s.
func countHigh(s string) int {
	n, i := 0, 0
	for ; i+8 <= len(s); i += 8 {
		n += bits.OnesCount64(binary.LittleEndian.Uint64([]byte(s[i:i+8])) & highBits)
	}
	for ; i < len(s); i++ {
		n += int(s[i] >> 7)
	}
	return n
}

// isSurrogate reports whether s starts with the 3-byte encoding of a lone
// surrogate (U+D800..U+DFFF), which Python's "surrogatepass" accepts.
func isSurrogate(s string) bool {
	return len(s) >= 3 && s[0] == 0xED && s[1] >= 0xA0 && s[1] <= 0xBF && s[2] >= 0x80 && s[2] <= 0xBF
}

// validPyUTF8 reports whether Python decodes s with
// s.decode("utf-8", "surrogatepass").
func validPyUTF8(s string) bool {
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			if !isSurrogate(s[i:]) {
				return false
			}
			size = 3
		}
		i += size
	}
	return true
}

// sanitizedLen returns the length of s after replacing each invalid byte
// (except encoded surrogates) with U+FFFD, and the number of replacements.
func sanitizedLen(s string) (n, bad int) {
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			i++
			n++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			if isSurrogate(s[i:]) {
				size = 3
			} else {
				bad++
				n += 3 // len("\uFFFD")
				i++
				continue
			}
		}
		n += size
		i += size
	}
	return n, bad
}

func appendSanitized(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			b = append(b, s[i])
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			if isSurrogate(s[i:]) {
				size = 3
			} else {
				b = append(b, "\uFFFD"...)
				i++
				continue
			}
		}
		b = append(b, s[i:i+size]...)
		i += size
	}
	return b
}
