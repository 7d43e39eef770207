package pymarshal

import (
	"errors"
	"testing"
)

// FuzzUnmarshal checks that Unmarshal never panics, that it fails only with
// *DecodeError, and that what it decodes survives Marshal then Unmarshal.
// Seeds: the cases below plus testdata/fuzz/FuzzUnmarshal, which holds the
// marshal.dumps output of CPython for the samples of testdata/interop.py
// (regenerate with go test -run TestPython -args -update-corpus).
func FuzzUnmarshal(f *testing.F) {
	for _, s := range []string{
		"N", "T", "F", "i\x01\x00\x00\x00", "l\x02\x00\x00\x00\x01\x00\x01\x00",
		"g\x00\x00\x00\x00\x00\x00\xf8?", "f\x031.5", "z\x03abc", "z\x01\xe9",
		"u\x03\x00\x00\x00\xed\xa0\x80", "s\x00\x00\x00\x00", "{z\x01kN0",
		")\x02NT", "[\x01\x00\x00\x00\xe9\x01\x00\x00\x00", "<\x00\x00\x00\x00",
		">\x01\x00\x00\x00N", "[\x02\x00\x00\x00\xdb\x01\x00\x00\x00Nr\x00\x00\x00\x00",
		"\xdb\x01\x00\x00\x00r\x00\x00\x00\x00", expansionBomb(12),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, size, err := unmarshal(data)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v is a %T, not a *DecodeError", err, err)
			}
			return
		}
		if size > 1<<20 {
			return // heavily shared: re-encoding would be slow
		}
		enc, err := Marshal(v)
		if err != nil {
			t.Fatalf("Marshal of decoded %s: %v", show(v), err)
		}
		v2, err := Unmarshal(enc)
		if err != nil {
			t.Fatalf("Unmarshal(Marshal(%s)) = %q: %v", show(v), enc, err)
		}
		if !equal(v, v2) {
			t.Fatalf("round trip changed %s into %s", show(v), show(v2))
		}
	})
}
