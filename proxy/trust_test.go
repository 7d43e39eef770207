package proxy

import (
	"net/netip"
	"strings"
	"testing"
)

func TestNewTrust(t *testing.T) {
	cases := []struct {
		allow   []string
		wantErr string
		yes     []string // RemoteAddr values that are trusted
		no      []string // and not
	}{
		{allow: DefaultAllow, yes: []string{"127.0.0.1:5000", "[::1]:5000", "[::ffff:127.0.0.1]:1", "@", "", "/run/x.sock"}, no: []string{"127.0.0.2:1", "10.0.0.1:1", "[::2]:1", "garbage", "1.2.3.4"}},
		{allow: []string{"10.0.0.0/8", "fd00::/8"}, yes: []string{"10.255.0.1:80", "[fd12::1]:80", "[::ffff:10.1.2.3]:80"}, no: []string{"11.0.0.1:80", "127.0.0.1:80", "[fe80::1]:80"}},
		{allow: []string{"10.1.2.3/8"}, yes: []string{"10.9.9.9:1"}}, // host bits are masked off
		{allow: []string{"::ffff:192.168.0.0/112"}, yes: []string{"192.168.3.4:1"}, no: []string{"192.169.0.1:1"}},
		{allow: []string{"127.0.0.1, ::1", " 192.0.2.9 "}, yes: []string{"127.0.0.1:1", "[::1]:1", "192.0.2.9:1"}, no: []string{"192.0.2.10:1"}},
		{allow: []string{"*"}, yes: []string{"8.8.8.8:53", "[2001:db8::1]:1"}, no: []string{"not-an-address"}},
		{allow: []string{"fe80::1%eth0"}, yes: []string{"[fe80::1%eth1]:1", "[fe80::1]:1"}},
		{allow: nil, yes: []string{"@"}, no: []string{"127.0.0.1:1"}},
		{allow: []string{""}, no: []string{"127.0.0.1:1"}},
		{allow: []string{"localhost"}, wantErr: `"localhost"`},
		{allow: []string{"10.0.0.0/33"}, wantErr: `"10.0.0.0/33"`},
		{allow: []string{"127.0.0.1", "1.2.3"}, wantErr: `"1.2.3"`},
		{allow: []string{"10.0.0.0/"}, wantErr: `"10.0.0.0/"`},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.allow, "|"), func(t *testing.T) {
			tr, err := NewTrust(c.allow)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("NewTrust(%q) error = %v, want one naming %s", c.allow, err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range c.yes {
				if !tr.Trusted(a) {
					t.Errorf("%q not trusted", a)
				}
			}
			for _, a := range c.no {
				if tr.Trusted(a) {
					t.Errorf("%q trusted", a)
				}
			}
		})
	}
}

func TestNilTrust(t *testing.T) {
	var tr *Trust
	if tr.Trusted("127.0.0.1:1") || tr.TrustedIP(netip.MustParseAddr("::1")) {
		t.Fatal("a nil Trust trusts an IP")
	}
	if !tr.Trusted("@") {
		t.Fatal("a nil Trust does not trust a unix-socket peer")
	}
}

func TestParseNode(t *testing.T) {
	cases := []struct {
		in       string
		ip, port string // "" ip: rejected
	}{
		{"192.0.2.60", "192.0.2.60", "0"},
		{"192.0.2.60:8080", "192.0.2.60", "8080"},
		{"[2001:db8:cafe::17]", "2001:db8:cafe::17", "0"},
		{"[2001:db8:cafe::17]:4711", "2001:db8:cafe::17", "4711"},
		{"2001:db8::1", "2001:db8::1", "0"}, // unbracketed, from a lax proxy
		{"[::ffff:192.0.2.1]:1", "192.0.2.1", "1"},
		{"192.0.2.1:_hidden", "192.0.2.1", "0"},
		{"unknown", "", ""},
		{"_hidden", "", ""},
		{"[2001:db8::1", "", ""},
		{"[2001:db8::1]x", "", ""},
		{"[2001:db8::1]:", "", ""},
		{"[192.0.2.1]", "", ""},
		{"192.0.2.1:", "", ""},
		{"192.0.2.1:65536", "", ""},
		{"192.0.2.1:-1", "", ""},
		{"192.0.2.1:000080", "", ""},
		{"300.1.1.1", "", ""},
		{"", "", ""},
	}
	for _, c := range cases {
		ip, port, ok := parseNode(c.in)
		if c.ip == "" {
			if ok {
				t.Errorf("parseNode(%q) = %v %q, want rejected", c.in, ip, port)
			}
			continue
		}
		if !ok || ip.String() != c.ip || port != c.port {
			t.Errorf("parseNode(%q) = %v %q %v, want %s %s", c.in, ip, port, ok, c.ip, c.port)
		}
	}
}

// TestForwardedElements: header lines to elements (nil: malformed), the
// input of the right-to-left walk.
func TestForwardedElements(t *testing.T) {
	type m = map[string]string
	cases := []struct {
		in   []string
		want []m
	}{
		{[]string{`for=192.0.2.60;proto=http;by=203.0.113.43`}, []m{{"for": "192.0.2.60", "proto": "http", "by": "203.0.113.43"}}},
		{[]string{`For="[2001:db8:cafe::17]:4711"`}, []m{{"for": "[2001:db8:cafe::17]:4711"}}},
		{[]string{`for=192.0.2.43, for=198.51.100.17`}, []m{{"for": "192.0.2.43"}, {"for": "198.51.100.17"}}},
		{[]string{`for=192.0.2.43`, `for=198.51.100.17;proto=https`}, []m{{"for": "192.0.2.43"}, {"for": "198.51.100.17", "proto": "https"}}},
		{[]string{` for = 1.2.3.4`}, []m{nil}}, // no spaces around '='
		{[]string{`for=1.2.3.4 ; proto=https , for=5.6.7.8`}, []m{{"for": "1.2.3.4", "proto": "https"}, {"for": "5.6.7.8"}}},
		{[]string{`host="a,b;c";for=1.2.3.4`}, []m{{"host": "a,b;c", "for": "1.2.3.4"}}},
		{[]string{`host="a\"b"`}, []m{{"host": `a"b`}}},
		{[]string{`for=[::1]:80`}, []m{{"for": "[::1]:80"}}},
		{[]string{`for=1.2.3.4;;proto=http;`}, []m{{"for": "1.2.3.4", "proto": "http"}}}, // empty pairs
		{[]string{`, for=1.2.3.4, ,`}, []m{{"for": "1.2.3.4"}}},                          // empty elements
		{[]string{`for`}, []m{nil}},
		{[]string{`for=1.2.3.4;for=5.6.7.8`}, []m{nil}},
		{[]string{`=x`}, []m{nil}},
		{[]string{``}, nil},
		// after a malformed element, parsing resumes at the next ',' outside quotes
		{[]string{`for=1.2.3.4 junk, for=5.6.7.8`}, []m{nil, {"for": "5.6.7.8"}}},
		{[]string{`for=6.6.6.6;, for=5.6.7.8`}, []m{{"for": "6.6.6.6"}, {"for": "5.6.7.8"}}},
		{[]string{`x "a,b", for=5.6.7.8`}, []m{nil, {"for": "5.6.7.8"}}},
		{[]string{`for=1;for=2, for="a\",b", for=5.6.7.8`}, []m{nil, {"for": `a",b`}, {"for": "5.6.7.8"}}},
		// an unterminated quote runs to the end of its line, not further
		{[]string{`for="1.2.3.4, for=5.6.7.8`}, []m{nil}},
		{[]string{`for="1.2.3.4`, `for=5.6.7.8`}, []m{nil, {"for": "5.6.7.8"}}},
		{[]string{`host="x`, `for=5.6.7.8, for="[2001:db8::1]"`}, []m{nil, {"for": "5.6.7.8"}, {"for": "[2001:db8::1]"}}},
		// a client's open quote cannot turn the proxy's element into a valid one
		{[]string{`for=6.6.6.6;host=", for="[2001:db8::1]";proto=https`}, []m{nil}},
	}
	for _, c := range cases {
		got := forwardedElements(c.in)
		if len(got) != len(c.want) {
			t.Errorf("%q = %v, want %v", c.in, got, c.want)
			continue
		}
		for i := range got {
			if (got[i] == nil) != (c.want[i] == nil) || len(got[i]) != len(c.want[i]) {
				t.Errorf("%q element %d = %v, want %v", c.in, i, got[i], c.want[i])
				continue
			}
			for k, v := range c.want[i] {
				if got[i][k] != v {
					t.Errorf("%q element %d: %s = %q, want %q", c.in, i, k, got[i][k], v)
				}
			}
		}
	}
}

func TestValidHost(t *testing.T) {
	good := []string{"example.com", "example.com:8443", "127.0.0.1:80", "[::1]", "[::1]:8080", "xn--bcher-kva.example", "a_b.example"}
	bad := []string{"", "a b", "evil.com/path", "a@b", "x:y", "host:", ":80", "[::1", "[zz]", "[::1]x", "a\r\nb", "a,b", "a?b", "a#b", strings.Repeat("a", 256)}
	for _, h := range good {
		if !validHost(h) {
			t.Errorf("validHost(%q) = false", h)
		}
	}
	for _, h := range bad {
		if validHost(h) {
			t.Errorf("validHost(%q) = true", h)
		}
	}
}
