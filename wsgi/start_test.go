package wsgi

import (
	"fmt"
	"testing"
)

func TestDecodeStart(t *testing.T) {
	cases := []struct {
		name, in, status, headers string
		fast                      bool
	}{
		{"python output", "(\x02\x00\x00\x00u\x06\x00\x00\x00200 OK[\x01\x00\x00\x00(\x02\x00\x00\x00u\x0c\x00\x00\x00Content-Typeu\n\x00\x00\x00text/plain", "200 OK", "[[Content-Type text/plain]]", true},
		{"no headers", "(\x02\x00\x00\x00u\x06\x00\x00\x00204 No[\x00\x00\x00\x00", "204 No", "[]", true},
		{"latin-1 value (general path)", "(\x02\x00\x00\x00u\x06\x00\x00\x00200 OK[\x01\x00\x00\x00(\x02\x00\x00\x00u\x03\x00\x00\x00X-Au\x05\x00\x00\x00caf\xc3\xa9", "200 OK", "[[X-A caf\xe9]]", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, fast := decodeStartFast([]byte(c.in))
			if fast != c.fast {
				t.Errorf("fast path taken: %v, want %v", fast, c.fast)
			}
			st, hs, err := decodeStart([]byte(c.in))
			if err != nil || st != c.status || fmt.Sprint(hs) != c.headers {
				t.Errorf("got %q %q %v", st, hs, err)
			}
		})
	}
	for _, bad := range []string{"", "N", "(\x02\x00\x00\x00u\x06\x00\x00\x00200 OK[\x01\x00\x00\x00(\x02\x00\x00\x00u\x01\x00\x00\x00Xu\x03\x00\x00\x00a\nb"} {
		if _, _, err := decodeStart([]byte(bad)); err == nil {
			t.Errorf("decodeStart(%q) accepted it", bad)
		}
	}
}
