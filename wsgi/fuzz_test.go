package wsgi

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/net/http/httpguts"

	"github.com/hornbeam-go/hornbeam/internal/httpwsgi"
	"github.com/hornbeam-go/hornbeam/pymarshal"
)

// FuzzParseStatus: httpwsgi.ParseStatus never panics, and a status it accepts is
// "NNN" or "NNN reason" with NNN from 200 to 999 and no CR, LF or NUL.
func FuzzParseStatus(f *testing.F) {
	for _, s := range []string{"200 OK", "404 Not Found", "999 Max", "199 Too Low", "1000 Big", "200", "200OK",
		"", "20", "+20 Plus", "-200 Neg", "２００ Wide", "200 OK\r\nX-Injected: 1", "200 \x00", "0x1 Hex", " 200 OK"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		code, err := httpwsgi.ParseStatus(s)
		if err != nil {
			return
		}
		if code < 200 || code > 999 {
			t.Fatalf("httpwsgi.ParseStatus(%q) = %d", s, code)
		}
		if len(s) < 3 || (len(s) > 3 && s[3] != ' ') {
			t.Fatalf("parseStatus accepted %q: not \"NNN reason\"", s)
		}
		for i := 0; i < 3; i++ {
			if s[i] < '0' || s[i] > '9' {
				t.Fatalf("parseStatus accepted %q: the code is not three digits", s)
			}
		}
		if n, _ := strconv.Atoi(s[:3]); n != code {
			t.Fatalf("httpwsgi.ParseStatus(%q) = %d, want %d", s, code, n)
		}
		if strings.ContainsAny(s, "\r\n\x00") {
			t.Fatalf("parseStatus accepted %q with CR, LF or NUL", s)
		}
	})
}

// checkHeaders fails unless every accepted header is a valid field name
// and a value of bytes without CR, LF or NUL (what may go on the wire).
func checkHeaders(t *testing.T, in any, hs [][2]string) {
	t.Helper()
	for _, kv := range hs {
		if !httpguts.ValidHeaderFieldName(kv[0]) {
			t.Fatalf("decodeHeaders(%#v) accepted the name %q", in, kv[0])
		}
		if strings.ContainsAny(kv[1], "\r\n\x00") || !httpguts.ValidHeaderFieldValue(kv[1]) {
			t.Fatalf("decodeHeaders(%#v) accepted the value %q", in, kv[1])
		}
	}
}

// FuzzDecodeHeaders: decodeHeaders never panics, on whatever marshal data
// decodes to (data) and on a (name, value) pair of str; what it accepts is
// safe to write as HTTP header fields, and a value comes out as the
// latin-1 bytes of its code points.
func FuzzDecodeHeaders(f *testing.F) {
	enc := func(v any) []byte {
		b, err := pymarshal.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	f.Add(enc(pymarshal.List{pymarshal.Tuple{"Content-Type", "text/plain"}}), "X-Name", "caf\u00e9")
	f.Add(enc(pymarshal.List{pymarshal.Tuple{"X-Evil", "a\r\nX-Injected: 1"}}), "X-Evil", "a\nb")
	f.Add(enc(pymarshal.Tuple{pymarshal.Tuple{"X A", "v"}, pymarshal.Tuple{"X-B", "\u4e2d"}}), "X A", "\u4e2d")
	f.Add(enc(pymarshal.List{pymarshal.Tuple{"X-Nul", "a\x00b"}, pymarshal.List{"not", "tuple"}}), "X-Nul", "a\x00b")
	f.Add(enc(pymarshal.List{pymarshal.Tuple{"X-Bytes", []byte("v")}}), "", "\u0100")
	f.Add([]byte("[\x01\x00\x00\x00)\x02\xda\x01Xu\x03\x00\x00\x00\xed\xa0\x80"), "X-Sur", "\xed\xa0\x80") // lone surrogate
	f.Add([]byte("N"), "X-Del", "a\x7fb")
	f.Fuzz(func(t *testing.T, data []byte, name, value string) {
		if v, err := pymarshal.Unmarshal(data); err == nil {
			if hs, err := decodeHeaders(v); err == nil {
				checkHeaders(t, v, hs)
			}
		}
		in := pymarshal.List{pymarshal.Tuple{name, value}}
		hs, err := decodeHeaders(in)
		if err != nil {
			return
		}
		checkHeaders(t, in, hs)
		want, ok := latin1Bytes(value)
		if len(hs) != 1 || hs[0][0] != name || !ok || hs[0][1] != want {
			t.Fatalf("decodeHeaders(%q: %q) = %q", name, value, hs)
		}
	})
}

// FuzzLatin1Bytes: latin1Bytes never panics; it accepts exactly the
// strings whose code points are all below 256 (ASCII as is), and maps each
// code point to one byte.
func FuzzLatin1Bytes(f *testing.F) {
	for _, s := range []string{"", "ascii", "caf\u00e9", "\u00ff\u0100", "\xff", "\xed\xa0\x80", "a\u4e2db", "\x00\x7f\u0080"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, ok := latin1Bytes(s)
		representable := true
		for i := 0; i < len(s); {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r > 0xFF || (r == utf8.RuneError && size == 1 && s[i] >= 0x80) {
				representable = false
			}
			i += size
		}
		if ok != representable {
			t.Fatalf("latin1Bytes(%q) ok = %v, want %v", s, ok, representable)
		}
		if !ok {
			return
		}
		runes := []rune(s)
		if len(out) != len(runes) {
			t.Fatalf("latin1Bytes(%q) = %q: %d bytes for %d code points", s, out, len(out), len(runes))
		}
		for i, r := range runes {
			if rune(out[i]) != r {
				t.Fatalf("latin1Bytes(%q) = %q: byte %d is %#x, want %#x", s, out, i, out[i], r)
			}
		}
	})
}

// FuzzDecodeStart: the fast path for Start frames agrees with the general
// decoder on every input it accepts, and never panics.
func FuzzDecodeStart(f *testing.F) {
	enc := func(v any) []byte {
		b, err := pymarshal.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	// Shapes as marshal.dumps((status, headers), 2) writes them.
	f.Add(enc(pymarshal.Tuple{"200 OK", pymarshal.List{pymarshal.Tuple{"Content-Type", "text/plain"}, pymarshal.Tuple{"Content-Length", "13"}}}))
	f.Add(enc(pymarshal.Tuple{"404 Not Found", pymarshal.List{}}))
	f.Add(enc(pymarshal.Tuple{"200 OK", pymarshal.List{pymarshal.Tuple{"X-Name", "caf\u00e9"}}}))
	f.Add(enc(pymarshal.Tuple{"200 OK", pymarshal.List{pymarshal.Tuple{"X Bad", "v"}}}))
	f.Add([]byte("(\x02\x00\x00\x00u\x06\x00\x00\x00200 OK[\xff\xff\xff\x7f"))
	// Real output of /usr/bin/python3's marshal.dumps(..., 2):
	f.Add([]byte("(\x02\x00\x00\x00u\x06\x00\x00\x00200 OK[\x02\x00\x00\x00(\x02\x00\x00\x00u\x0c\x00\x00\x00Content-Typeu\n\x00\x00\x00text/plain(\x02\x00\x00\x00u\x0e\x00\x00\x00Content-Lengthu\x02\x00\x00\x0013"))
	f.Add([]byte("(\x02\x00\x00\x00u\x08\x00\x00\x00500 Oops[\x01\x00\x00\x00(\x02\x00\x00\x00u\x03\x00\x00\x00X-Au\x05\x00\x00\x00caf\xc3\xa9"))
	f.Fuzz(func(t *testing.T, p []byte) {
		fs, fh, ok := decodeStartFast(p)
		if !ok {
			return
		}
		v, err := pymarshal.Unmarshal(p)
		tu, isTuple := v.(pymarshal.Tuple)
		if err != nil || !isTuple || len(tu) != 2 {
			t.Fatalf("fast path accepted %q, which the decoder reads as %#v (%v)", p, v, err)
		}
		gh, err := decodeHeaders(tu[1])
		if err != nil || tu[0] != fs || fmt.Sprint(gh) != fmt.Sprint(fh) {
			t.Fatalf("fast path %q %q, general path %q %q (%v)", fs, fh, tu[0], gh, err)
		}
	})
}
