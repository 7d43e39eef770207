package pymarshal

import (
	"bytes"
	"errors"
	"math"
	"math/big"
	"strings"
	"testing"
)

// nested builds n nested lists around v.
func nested(n int, v any) any {
	for range n {
		v = List{v}
	}
	return v
}

func TestRoundTrip(t *testing.T) {
	negZero := math.Copysign(0, -1)
	nanPayload := math.Float64frombits(0x7ff4000000000123)
	tests := []struct {
		name string
		in   any
		want any // nil means: same as in
	}{
		{"None", nil, nil},
		{"True", true, nil},
		{"False", false, nil},
		{"zero", int64(0), nil},
		{"one", int64(1), nil},
		{"minus one", int64(-1), nil},
		{"int32 max", int64(math.MaxInt32), nil},
		{"int32 max+1", int64(math.MaxInt32 + 1), nil},
		{"int32 min", int64(math.MinInt32), nil},
		{"int32 min-1", int64(math.MinInt32 - 1), nil},
		{"2^40", int64(1 << 40), nil},
		{"2^60-1", int64(1<<60 - 1), nil},
		{"2^60", int64(1 << 60), nil},
		{"-2^60", int64(-1 << 60), nil},
		{"int64 max", int64(math.MaxInt64), nil},
		{"int64 min", int64(math.MinInt64), nil},
		{"go int", 7, int64(7)},
		{"go int8", int8(-8), int64(-8)},
		{"go int16", int16(-300), int64(-300)},
		{"go int32", int32(math.MinInt32), int64(math.MinInt32)},
		{"go uint8", uint8(255), int64(255)},
		{"go uint16", uint16(65535), int64(65535)},
		{"go uint32", uint32(math.MaxUint32), int64(math.MaxUint32)},
		{"go uint", uint(1 << 40), int64(1 << 40)},
		{"go uint64 small", uint64(5), int64(5)},
		{"go uint64 2^63", uint64(1 << 63), pow2(63)},
		{"go uint64 max", uint64(math.MaxUint64), add(pow2(64), -1)},
		{"big 2^63", pow2(63), nil},
		{"big -2^63-1", add(neg(pow2(63)), -1), nil},
		{"big -2^63 fits", neg(pow2(63)), int64(math.MinInt64)},
		{"big small", big.NewInt(42), int64(42)},
		{"big 2^64", pow2(64), nil},
		{"big 2^200", pow2(200), nil},
		{"big -2^200", neg(pow2(200)), nil},
		{"big 2^200-1", add(pow2(200), -1), nil},
		{"big 2^1000+12345", add(pow2(1000), 12345), nil},
		{"big 3^300", new(big.Int).Exp(big.NewInt(3), big.NewInt(300), nil), nil},
		{"float", 1.5, nil},
		{"float32", float32(0.25), 0.25},
		{"float -0", negZero, nil},
		{"float +Inf", math.Inf(1), nil},
		{"float -Inf", math.Inf(-1), nil},
		{"float NaN", math.NaN(), nil},
		{"float NaN payload", nanPayload, nil},
		{"float smallest", math.SmallestNonzeroFloat64, nil},
		{"float max", math.MaxFloat64, nil},
		{"empty str", "", nil},
		{"ascii str", "hello", nil},
		{"ascii 255", strings.Repeat("x", 255), nil},
		{"ascii 256", strings.Repeat("x", 256), nil},
		{"ascii 70000", strings.Repeat("abc", 70000/3), nil},
		{"latin-1 str", "café", nil},
		{"cjk str", "日本語", nil},
		{"astral str", "😀 ok", nil},
		{"lone surrogate", "a\xed\xa0\x80b", nil},
		{"nul in str", "a\x00b", nil},
		{"empty bytes", []byte{}, nil},
		{"bytes", []byte{0, 1, 0xff, 'x'}, nil},
		{"empty list", List{}, nil},
		{"empty tuple", Tuple{}, nil},
		{"empty dict", Dict{}, nil},
		{"empty set", Set{}, nil},
		{"empty frozenset", FrozenSet{}, nil},
		{"list", List{int64(1), "two", 3.0, nil, true}, nil},
		{"tuple", Tuple{int64(1), Tuple{"a", []byte("b")}}, nil},
		{"tuple 300", Tuple(make([]any, 300)), nil},
		{"set", Set{int64(1), "a", Tuple{int64(2)}, FrozenSet{int64(3)}}, nil},
		{"frozenset", FrozenSet{"x", pow2(100)}, nil},
		{"dict", Dict{{"b", int64(1)}, {"a", List{}}, {int64(3), nil}, {Tuple{int64(1), "x"}, Dict{}}, {nil, false}, {[]byte("k"), 1.5}}, nil},
		{"nested", Dict{{"list", List{List{List{}}, Dict{{"k", Set{}}}}}, {"t", Tuple{Tuple{Tuple{}}}}}, nil},
		{"depth 200", nested(MaxDepth, "leaf"), nil},
		{"go []any", []any{int64(1), "x"}, List{int64(1), "x"}},
		{"go []string", []string{"a", "é"}, List{"a", "é"}},
		{"go map[string]any", map[string]any{"z": 1, "a": []string{"x"}, "m": "é"}, Dict{{"a", List{"x"}}, {"m", "é"}, {"z", int64(1)}}},
		{"go map[string]string", map[string]string{"b": "2", "a": "1"}, Dict{{"a", "1"}, {"b", "2"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if want == nil {
				want = tt.in
			}
			data, err := Marshal(tt.in)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			got, err := Unmarshal(data)
			if err != nil {
				t.Fatalf("Unmarshal(%q): %v", data, err)
			}
			if !equal(got, want) {
				t.Fatalf("round trip of %s: got %s, want %s", show(tt.in), show(got), show(want))
			}
			// The Encoder gives the same bytes, appended after a prefix.
			var e Encoder
			e.BeginDict()
			if err := e.Value(tt.in); err != nil {
				t.Fatalf("Encoder.Value: %v", err)
			}
			if !bytes.Equal(e.Data()[1:], data) {
				t.Fatalf("Encoder.Value wrote %q, Marshal %q", e.Data()[1:], data)
			}
			app, err := AppendMarshal([]byte("prefix"), tt.in)
			if err != nil || string(app[:6]) != "prefix" || !bytes.Equal(app[6:], data) {
				t.Fatalf("AppendMarshal = %q, %v", app, err)
			}
		})
	}
}

// TestEncoderBytes checks exact encodings against what CPython writes.
func TestEncoderBytes(t *testing.T) {
	tests := []struct {
		name  string
		write func(e *Encoder)
		want  string
	}{
		{"None", func(e *Encoder) { e.None() }, "N"},
		{"True", func(e *Encoder) { e.Bool(true) }, "T"},
		{"False", func(e *Encoder) { e.Bool(false) }, "F"},
		{"int 1", func(e *Encoder) { e.Int(1) }, "i\x01\x00\x00\x00"},
		{"int -1", func(e *Encoder) { e.Int(-1) }, "i\xff\xff\xff\xff"},
		{"int -2^31", func(e *Encoder) { e.Int(math.MinInt32) }, "i\x00\x00\x00\x80"},
		// marshal.dumps(2**31) == b'\xec\x03\x00\x00\x00\x00\x00\x00\x00\x02\x00' (with FLAG_REF)
		{"int 2^31", func(e *Encoder) { e.Int(1 << 31) }, "l\x03\x00\x00\x00\x00\x00\x00\x00\x02\x00"},
		{"int 2^62", func(e *Encoder) { e.Int(1 << 62) }, "l\x05\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x04\x00"},
		{"int -2^63", func(e *Encoder) { e.Int(math.MinInt64) }, "l\xfb\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00\x08\x00"},
		{"float 1.5", func(e *Encoder) { e.Float(1.5) }, "g\x00\x00\x00\x00\x00\x00\xf8?"},
		{"bytes", func(e *Encoder) { e.Bytes([]byte("by")) }, "s\x02\x00\x00\x00by"},
		{"str ascii", func(e *Encoder) { e.Str("abc") }, "z\x03abc"},
		{"str empty", func(e *Encoder) { e.Str("") }, "z\x00"},
		{"str utf8", func(e *Encoder) { e.Str("é") }, "u\x02\x00\x00\x00\xc3\xa9"},
		{"str invalid", func(e *Encoder) { e.Str("a\xffb\xc3") }, "u\x08\x00\x00\x00a\xef\xbf\xbdb\xef\xbf\xbd"},
		{"str surrogate kept", func(e *Encoder) { e.Str("\xed\xa0\x80\xe9") }, "u\x06\x00\x00\x00\xed\xa0\x80\xef\xbf\xbd"},
		{"str long ascii", func(e *Encoder) { e.Str(strings.Repeat("x", 256)) }, "a\x00\x01\x00\x00" + strings.Repeat("x", 256)},
		{"latin1 ascii", func(e *Encoder) { e.Latin1Str("/path") }, "z\x05/path"},
		{"latin1 café", func(e *Encoder) { e.Latin1Str("caf\xe9") }, "u\x05\x00\x00\x00caf\xc3\xa9"},
		{"latin1 ff", func(e *Encoder) { e.Latin1Str("\xff\x80") }, "u\x04\x00\x00\x00\xc3\xbf\xc2\x80"},
		{"latin1 long", func(e *Encoder) { e.Latin1Str(strings.Repeat("y", 300)) }, "a\x2c\x01\x00\x00" + strings.Repeat("y", 300)},
		{"dict", func(e *Encoder) { e.BeginDict(); e.Str("k"); e.None(); e.EndDict() }, "{z\x01kN0"},
		{"list", func(e *Encoder) { e.BeginList(2); e.Int(0); e.Bool(true) }, "[\x02\x00\x00\x00i\x00\x00\x00\x00T"},
		{"tuple", func(e *Encoder) { e.BeginTuple(1); e.None() }, ")\x01N"},
		{"tuple 256", func(e *Encoder) { e.BeginTuple(256) }, "(\x00\x01\x00\x00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e Encoder
			e.Bool(true) // Reset must clear this
			e.Reset()
			tt.write(&e)
			if e.Err() != nil {
				t.Fatal(e.Err())
			}
			if got := string(e.Data()); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			if _, err := Unmarshal(e.Data()); err != nil && !errors.Is(err, ErrTruncated) {
				t.Fatalf("Unmarshal: %v", err)
			}
		})
	}
}

func TestEncoderErr(t *testing.T) {
	var e Encoder
	e.BeginList(-1)
	if !errors.Is(e.Err(), ErrTooLarge) || len(e.Data()) != 0 {
		t.Fatalf("BeginList(-1): err %v, data %q", e.Err(), e.Data())
	}
	e.Reset()
	if e.Err() != nil {
		t.Fatal("Reset did not clear Err")
	}
}

func TestMarshalErrors(t *testing.T) {
	selfList := make(List, 1)
	selfList[0] = selfList
	tests := []struct {
		name string
		in   any
		want error
	}{
		{"chan", make(chan int), nil},
		{"struct", struct{}{}, nil},
		{"map[int]any", map[int]any{}, nil},
		{"nested unsupported", List{int64(1), Dict{{"k", complex(1, 2)}}}, nil},
		{"nil big", (*big.Int)(nil), nil},
		{"invalid utf8", "a\xffb", ErrInvalidUTF8},
		{"invalid utf8 key", map[string]any{"\xff": 1}, ErrInvalidUTF8},
		{"invalid utf8 in []string", []string{"ok", "\xc3"}, ErrInvalidUTF8},
		{"list as dict key", Dict{{List{}, int64(1)}}, ErrUnhashable},
		{"dict in set", Set{Dict{}}, ErrUnhashable},
		{"tuple of list in frozenset", FrozenSet{Tuple{List{}}}, ErrUnhashable},
		{"tuple of list as key", Dict{{Tuple{int64(1), Set{}}, nil}}, ErrUnhashable},
		{"too deep", nested(MaxDepth+1, nil), ErrTooDeep},
		{"cycle", selfList, ErrTooDeep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := Marshal(tt.in)
			if err == nil {
				t.Fatalf("Marshal succeeded: %q", data)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if tt.want == nil {
				var ute *UnsupportedTypeError
				if tt.name != "nil big" && !errors.As(err, &ute) {
					t.Fatalf("error %v (%T), want *UnsupportedTypeError", err, err)
				}
			}
			// On error, Value leaves the buffer as it was.
			var e Encoder
			e.None()
			if e.Value(tt.in) == nil || string(e.Data()) != "N" {
				t.Fatalf("Encoder.Value left %q", e.Data())
			}
		})
	}
	_, err := Marshal(make(chan int))
	if got, want := err.Error(), "pymarshal: unsupported Go type chan int"; got != want {
		t.Errorf("error %q, want %q", got, want)
	}
}

func TestDictGet(t *testing.T) {
	d := Dict{{List{}, 0}, {"a", int64(1)}, {int64(2), "two"}}
	if v, ok := d.Get("a"); !ok || v != int64(1) {
		t.Errorf(`Get("a") = %v, %v`, v, ok)
	}
	if v, ok := d.Get(int64(2)); !ok || v != "two" {
		t.Errorf(`Get(2) = %v, %v`, v, ok)
	}
	if _, ok := d.Get("missing"); ok {
		t.Error(`Get("missing") found`)
	}
	if _, ok := d.Get(List{}); ok {
		t.Error(`Get(List{}) found`)
	}
}
