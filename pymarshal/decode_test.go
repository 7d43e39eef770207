package pymarshal

import (
	"encoding/binary"
	"errors"
	"math"
	"runtime"
	"strings"
	"testing"
)

// decodeCases are valid inputs; TestPython checks that CPython accepts them too.
var decodeCases = []struct {
	name string
	in   string
	want any
}{
	{"None", "N", nil},
	{"int", "i\xfe\xff\xff\xff", int64(-2)},
	{"flagged int", "\xe9\x07\x00\x00\x00", int64(7)},
	{"obsolete int64", "I\x00\x00\x00\x00\x01\x00\x00\x00", int64(1 << 32)},
	{"long zero", "l\x00\x00\x00\x00", int64(0)},
	{"long small", "l\x01\x00\x00\x00\x05\x00", int64(5)},
	{"long negative", "l\xfe\xff\xff\xff\x00\x00\x01\x00", int64(-(1 << 15))},
	{"long 2^62 five digits", "l\x05\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x04\x00", int64(1 << 62)},
	{"long 2^63", "l\x05\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x08\x00", pow2(63)},
	{"text float", "f\x031.5", 1.5},
	{"text float repr", "f\x130.10000000000000001", 0.1},
	{"text float exp", "f\x05-1e-3", -0.001},
	{"text float point", "f\x021.", 1.0},
	{"text float leading point", "f\x02.5", 0.5},
	{"text float inf", "f\x08Infinity", math.Inf(1)},
	{"text float -inf", "f\x04-inf", math.Inf(-1)},
	{"text float nan", "f\x03nan", math.NaN()},
	{"text float overflow", "f\x051e999", math.Inf(1)},
	{"text float ends at NUL", "f\x051.5\x00x", 1.5},
	{"bytes", "s\x03\x00\x00\x00a\x00b", []byte("a\x00b")},
	{"str", "u\x02\x00\x00\x00\xc3\xa9", "é"},
	{"str empty", "u\x00\x00\x00\x00", ""},
	{"interned str", "t\x01\x00\x00\x00x", "x"},
	{"surrogate pair stays two surrogates", "u\x06\x00\x00\x00\xed\xa0\xbd\xed\xb8\x80", "\xed\xa0\xbd\xed\xb8\x80"},
	{"ascii", "a\x02\x00\x00\x00hi", "hi"},
	{"ascii interned", "A\x02\x00\x00\x00hi", "hi"},
	{"short ascii", "z\x02hi", "hi"},
	{"short ascii interned", "Z\x00", ""},
	// CPython does not check TYPE_ASCII data: the bytes are Latin-1 code points.
	{"short ascii latin-1", "z\x04caf\xe9", "café"},
	{"ascii latin-1", "a\x01\x00\x00\x00\xff", "ÿ"},
	{"small tuple", ")\x02NT", Tuple{nil, true}},
	{"tuple", "(\x01\x00\x00\x00F", Tuple{false}},
	{"list", "[\x00\x00\x00\x00", List{}},
	{"dict", "{z\x01ai\x01\x00\x00\x000", Dict{{"a", int64(1)}}},
	{"set", "<\x01\x00\x00\x00N", Set{nil}},
	{"frozenset", ">\x00\x00\x00\x00", FrozenSet{}},
	{"flagged NULL ends dict", "{\xb0", Dict{}},
	{"refs", "[\x03\x00\x00\x00\xfa\x01xr\x00\x00\x00\x00r\x00\x00\x00\x00", List{"x", "x", "x"}},
	{"ref to completed list", "[\x02\x00\x00\x00\xdb\x01\x00\x00\x00Nr\x00\x00\x00\x00", List{List{nil}, List{nil}}},
	{"ref numbering: container slot reserved first", ")\x02\xa9\x01\xe9\x05\x00\x00\x00r\x01\x00\x00\x00", Tuple{Tuple{int64(5)}, int64(5)}},
	{"frozenset ref as set element", "[\x02\x00\x00\x00\xbe\x01\x00\x00\x00N<\x01\x00\x00\x00r\x00\x00\x00\x00", List{FrozenSet{nil}, Set{FrozenSet{nil}}}},
	{"flag on singleton does not register", "[\x03\x00\x00\x00\xce\xda\x01xr\x00\x00\x00\x00", List{nil, "x", "x"}},
}

func TestUnmarshal(t *testing.T) {
	for _, tt := range decodeCases {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Unmarshal([]byte(tt.in))
			if err != nil {
				t.Fatalf("Unmarshal(%q): %v", tt.in, err)
			}
			if !equal(got, tt.want) {
				t.Fatalf("Unmarshal(%q) = %s, want %s", tt.in, show(got), show(tt.want))
			}
		})
	}
}

func le32(n int32) string {
	return string(binary.LittleEndian.AppendUint32(nil, uint32(n)))
}

// expansionBomb returns input in which each of n lists holds two references
// to the previous one, so that the expanded value doubles at every level.
func expansionBomb(n int) string {
	var b strings.Builder
	b.WriteString("[" + le32(int32(n+1)))
	b.WriteString("\xe9" + le32(1)) // ref 0
	for i := 1; i <= n; i++ {
		b.WriteString("\xdb" + le32(2) + "r" + le32(int32(i-1)) + "r" + le32(int32(i-1)))
	}
	return b.String()
}

// decodeErrorCases are inputs Unmarshal rejects. TestPython checks that
// CPython rejects them too, except those marked pyAccepts, where Unmarshal is
// deliberately stricter.
var decodeErrorCases = []struct {
	name      string
	in        string
	want      error
	msg       string // expected Error(), if not empty
	pyAccepts bool
}{
	{"empty", "", ErrTruncated, "pymarshal: input ends where a value was expected at offset 0", false},
	{"trailing", "NN", ErrTrailingData, "pymarshal: 1 bytes of trailing data at offset 1", true},
	{"truncated int", "i\x01\x00", ErrTruncated, "pymarshal: truncated int at offset 0", false},
	{"truncated str in list", "[\x01\x00\x00\x00" + "(\x02\x00\x00\x00" + "N" + "u\x05\x00\x00\x00ab", ErrTruncated, "", false},
	{"truncated str offset", "(\x02\x00\x00\x00z\x03abcu\x05\x00\x00\x00ab", ErrTruncated, "pymarshal: truncated str at offset 10", false},
	{"truncated long", "l\x02\x00\x00\x00\x01\x00", ErrTruncated, "pymarshal: truncated long int at offset 0", false},
	{"truncated float", "g\x00\x00", ErrTruncated, "", false},
	{"truncated text float", "f\x051.", ErrTruncated, "", false},
	{"truncated short ascii", "z", ErrTruncated, "", false},
	{"truncated dict", "{z\x01k", ErrTruncated, "", false},
	{"unterminated dict", "{z\x01kN", ErrTruncated, "pymarshal: truncated dict at offset 0", false},
	{"huge str", "u\xff\xff\xff\x7f", ErrTruncated, "", false},
	{"huge bytes", "s\xff\xff\xff\x7fabc", ErrTruncated, "", false},
	{"huge list", "[\xff\xff\xff\x7fN", ErrTruncated, "pymarshal: truncated list: 2147483647 elements announced, 1 bytes left at offset 0", false},
	{"huge long", "l\xff\xff\xff\x7f", ErrTruncated, "", false},
	{"negative str size", "u\xff\xff\xff\xff", ErrInvalidData, "pymarshal: negative str size -1 at offset 0", false},
	{"negative list size", "[\x00\x00\x00\x80", ErrInvalidData, "", false},
	{"negative set size", "<\xfe\xff\xff\xff", ErrInvalidData, "", false},
	{"long size min int32", "l\x00\x00\x00\x80", ErrInvalidData, "", false},
	{"long digit out of range", "l\x01\x00\x00\x00\x00\x80", ErrInvalidData, "", false},
	{"long unnormalized", "l\x02\x00\x00\x00\x01\x00\x00\x00", ErrInvalidData, "pymarshal: unnormalized long int at offset 0", false},
	{"bad text float", "f\x03abc", ErrInvalidData, "", false},
	{"text float with space", "f\x03 1.", ErrInvalidData, "", false},
	{"text float hex", "f\x030x1", ErrInvalidData, "", false},
	{"text float underscore", "f\x031_0", ErrInvalidData, "", false},
	{"text float bare exponent", "f\x021e", ErrInvalidData, "", false},
	{"text float point only", "f\x01.", ErrInvalidData, "", false},
	{"text float empty", "f\x00", ErrInvalidData, "", false},
	{"text float NUL only", "f\x02\x001", ErrInvalidData, "", false},
	{"NULL at top", "0", ErrInvalidData, "", false},
	{"NULL in list", "[\x01\x00\x00\x000", ErrInvalidData, "", false},
	{"NULL as dict value", "{z\x01a0", ErrInvalidData, "", true},
	{"invalid utf8", "u\x02\x00\x00\x00\xc3(", ErrInvalidUTF8, "", false},
	{"overlong utf8", "u\x02\x00\x00\x00\xc0\x80", ErrInvalidUTF8, "", false},
	{"truncated utf8 surrogate", "u\x02\x00\x00\x00\xed\xa0", ErrInvalidUTF8, "", false},
	{"code object", "c\x00\x00\x00\x00", ErrUnsupportedCode, "pymarshal: unsupported type code 'c' (code object) at offset 0", false},
	{"complex", "y" + strings.Repeat("\x00", 16), ErrUnsupportedCode, "", true},
	{"text complex", "x\x011\x011", ErrUnsupportedCode, "", true},
	{"ellipsis", ".", ErrUnsupportedCode, "", true},
	{"stopiteration", "S", ErrUnsupportedCode, "", true},
	{"unknown", "?", ErrUnsupportedCode, "", false},
	{"garbage code", "\x01", ErrUnsupportedCode, "pymarshal: unknown type code '\\x01' at offset 0", false},
	{"flagged complex in list", "[\x01\x00\x00\x00\xf9" + strings.Repeat("\x00", 16), ErrUnsupportedCode, "pymarshal: unsupported type code 'y' (complex) at offset 5", true},
	{"ref without table", "r\x00\x00\x00\x00", ErrInvalidRef, "", false},
	{"negative ref", "[\x02\x00\x00\x00\xe9\x01\x00\x00\x00r\xff\xff\xff\xff", ErrInvalidRef, "", false},
	{"ref out of range", "[\x02\x00\x00\x00\xe9\x01\x00\x00\x00r\x01\x00\x00\x00", ErrInvalidRef, "", false},
	{"truncated ref", "r\x00", ErrTruncated, "", false},
	{"self-referencing list", "\xdb\x01\x00\x00\x00r\x00\x00\x00\x00", ErrCycle, "pymarshal: reference to object 0, a container that is still being decoded at offset 5", true},
	{"self-referencing dict", "\xfbz\x01kr\x00\x00\x00\x000", ErrCycle, "", true},
	{"frozenset under construction", "\xbe\x01\x00\x00\x00r\x00\x00\x00\x00", ErrCycle, "", false},
	{"list in set", "<\x01\x00\x00\x00[\x00\x00\x00\x00", ErrUnhashable, "", false},
	{"dict as key", "{{0N0", ErrUnhashable, "pymarshal: unhashable dict key at offset 1", false},
	{"tuple with list as key", "{)\x01[\x00\x00\x00\x00N0", ErrUnhashable, "", false},
	{"ref to list as set element", "[\x02\x00\x00\x00\xdb\x00\x00\x00\x00<\x01\x00\x00\x00r\x00\x00\x00\x00", ErrUnhashable, "", false},
	{"too deep", strings.Repeat("[\x01\x00\x00\x00", MaxDepth+1) + "N", ErrTooDeep, "pymarshal: list nested more than 200 containers deep at offset 1000", true},
	{"expansion bomb", expansionBomb(40), ErrTooLarge, "", true},
}

func TestUnmarshalErrors(t *testing.T) {
	for _, tt := range decodeErrorCases {
		t.Run(tt.name, func(t *testing.T) {
			v, err := Unmarshal([]byte(tt.in))
			if err == nil {
				t.Fatalf("Unmarshal(%q) = %s, want error", tt.in, show(v))
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Unmarshal(%q): error %v, want %v", tt.in, err, tt.want)
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T is not a *DecodeError", err)
			}
			if tt.msg != "" && err.Error() != tt.msg {
				t.Fatalf("error %q, want %q", err.Error(), tt.msg)
			}
		})
	}
}

func TestUnmarshalDepthLimit(t *testing.T) {
	ok := strings.Repeat("[\x01\x00\x00\x00", MaxDepth) + "N"
	if _, err := Unmarshal([]byte(ok)); err != nil {
		t.Fatalf("%d nested lists: %v", MaxDepth, err)
	}
}

// TestUnmarshalHugeLengthNoAlloc checks that a length claiming 2 GB fails
// without allocating anything proportional to it.
func TestUnmarshalHugeLengthNoAlloc(t *testing.T) {
	for _, in := range []string{"u\xff\xff\xff\x7f", "s\xff\xff\xff\x7f", "[\xff\xff\xff\x7f", "(\xff\xff\xff\x7f", "l\xff\xff\xff\x7f", "<\xff\xff\xff\x7f"} {
		data := []byte(in + strings.Repeat("N", 100))
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := Unmarshal(data)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrTruncated) {
			t.Errorf("%q: error %v", in, err)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 4096 {
			t.Errorf("%q: allocated %d bytes", in, n)
		}
	}
}

// TestExpansionBelowLimit checks that moderate sharing is accepted and the
// expanded size is accounted for.
func TestExpansionBelowLimit(t *testing.T) {
	in := expansionBomb(10)
	v, size, err := unmarshal([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	top := v.(List)
	if len(top) != 11 {
		t.Fatalf("len %d", len(top))
	}
	enc, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if len(enc) > size || size > 2*len(enc) {
		t.Errorf("expanded size %d, re-encoded %d bytes", size, len(enc))
	}
}
