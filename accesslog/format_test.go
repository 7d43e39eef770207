package accesslog

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestParseFormat(t *testing.T) {
	cases := []struct {
		format  string
		want    []part // nil: only check the error
		wantErr string // substring of the error; "" = no error
	}{
		{format: "plain text", want: []part{{kLiteral, "plain text"}}},
		{format: "100%% %(s)s", want: []part{{kLiteral, "100% "}, {kStatus, ""}}},
		{format: `%(h)s "%(r)s"`, want: []part{{kRemote, ""}, {kLiteral, ` "`}, {kRequestLine, ""}, {kLiteral, `"`}}},
		{format: "%({x-request-id}i)s|%({content-type}o)s|%({HOME}e)s", want: []part{
			{kReqHeader, "X-Request-Id"}, {kLiteral, "|"}, {kRespHeader, "Content-Type"}, {kLiteral, "|"}, {kEnv, "HOME"}}},
		{format: "%(h)s%(l)s%(u)s%(t)s%(r)s%(m)s%(U)s%(q)s%(H)s%(s)s%(B)s%(b)s%(f)s%(a)s%(T)s%(D)s%(M)s%(L)s%(p)s", want: []part{
			{kRemote, ""}, {kDash, ""}, {kUser, ""}, {kTime, ""}, {kRequestLine, ""}, {kMethod, ""}, {kPath, ""}, {kQuery, ""},
			{kProto, ""}, {kStatus, ""}, {kBytes, ""}, {kBytesCLF, ""}, {kReferer, ""}, {kUserAgent, ""}, {kSeconds, ""},
			{kMicros, ""}, {kMillis, ""}, {kDecimal, ""}, {kPID, ""}}},
		{format: "%(x)s", wantErr: "unknown atom %(x)s"},
		{format: "%(h)s %(zz)s", wantErr: "unknown atom %(zz)s"},
		{format: "%(S)s", wantErr: "unknown atom %(S)s"}, // atoms are case-sensitive, as in gunicorn
		{format: "%({}i)s", wantErr: "empty name"},
		{format: "%({x}z)s", wantErr: "unknown atom %({x}z)s"},
		{format: "%(h)d", wantErr: "must end in 's'"},
		{format: "%(h)", wantErr: "must end in 's'"},
		{format: "%(h", wantErr: "unterminated atom"},
		{format: "50% off", wantErr: "offset 2"},
		{format: "trailing %", wantErr: "offset 9"},
	}
	for _, c := range cases {
		t.Run(c.format, func(t *testing.T) {
			got, err := parseFormat(c.format)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("parseFormat(%q) error = %v, want one containing %q", c.format, err, c.wantErr)
				}
				if _, err := New(io.Discard, c.format, false); err == nil {
					t.Fatalf("New accepted %q", c.format)
				}
				if _, err := New(io.Discard, c.format, true); err == nil {
					t.Fatalf("New(jsonLines) accepted %q", c.format)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseFormat(%q): %v", c.format, err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("parseFormat(%q) = %+v, want %+v", c.format, got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("parseFormat(%q)[%d] = %+v, want %+v", c.format, i, got[i], c.want[i])
				}
			}
		})
	}
}

func TestDefaultFormatParses(t *testing.T) {
	l, err := New(io.Discard, "", false)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := parseFormat(DefaultFormat)
	if len(l.parts) != len(want) || len(want) != 18 {
		t.Fatalf("default format parsed into %d parts, want %d (18)", len(l.parts), len(want))
	}
}

func TestEscape(t *testing.T) {
	cases := []struct{ in, want string }{
		{"plain /path?x=1", "plain /path?x=1"},
		{"", ""},
		{"a\nb", `a\x0ab`},
		{"a\r\nX-Fake: 1", `a\x0d\x0aX-Fake: 1`},
		{"tab\there", `tab\x09here`},
		{`q"uote`, `q\"uote`},
		{`back\slash`, `back\\slash`},
		{"del\x7f", `del\x7f`},
		{"nul\x00", `nul\x00`},
		{"héllo wörld ✓", "héllo wörld ✓"},
		{"bad\xffutf8", `bad\xffutf8`},
		{"line\u2028sep", `line\u2028sep`},
		{"c1\u0085x", `c1\u0085x`},
		{"\x1b[31mred", `\x1b[31mred`},
	}
	for _, c := range cases {
		var buf bytes.Buffer
		appendEscaped(&buf, c.in)
		if buf.String() != c.want {
			t.Errorf("escape(%q) = %q, want %q", c.in, buf.String(), c.want)
		}
	}
}
