package httpguard

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// parseResult is everything the parser concluded about a stream.
type parseResult struct {
	recs   []record
	ends   []int64
	passed int   // bytes passed on
	err    error // the violation, if any
	gaveUp string
	h2c    bool
}

// parseAll feeds data to a fresh parser in pieces of the given sizes
// (cycled; nil: all at once).
func parseAll(data []byte, pieces []int) parseResult {
	p := &parser{trace: true}
	var res parseResult
	for k := 0; len(data) > 0; k++ {
		n := len(data)
		if len(pieces) > 0 {
			n = min(max(pieces[k%len(pieces)], 1), len(data))
		}
		m, err := p.feed(data[:n])
		res.recs = append(res.recs, p.out...)
		p.out = p.out[:0]
		res.passed += m
		if err != nil {
			res.err = err
			break
		}
		data = data[n:]
	}
	res.ends, res.gaveUp, res.h2c = p.ends, p.gaveUp, p.h2c
	return res
}

func (r parseResult) String() string {
	var b strings.Builder
	for i, rec := range r.recs {
		fmt.Fprintf(&b, "[%s 1.%d start=%d te10=%v star=%v] ", rec.method[:min(rec.methodLen, 16)], rec.minor, rec.start, rec.te10, rec.star)
		_ = i
	}
	fmt.Fprintf(&b, "ends=%v passed=%d err=%v gaveUp=%q h2c=%v", r.ends, r.passed, r.err, r.gaveUp, r.h2c)
	return b.String()
}

func TestParser(t *testing.T) {
	const host = "Host: x\r\n"
	chunkedPost := "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n"
	cases := []struct {
		name    string
		in      string
		methods string // the records' methods and versions, "GET/1 POST/0"
		te10    int    // index of the record with te10, -1 none
		ends    []int64
		err     string // substring of the violation, "" none
		passed  int    // bytes passed on when err != "" (else all)
		gaveUp  string // substring, "" none
		h2c     bool
	}{
		{name: "simple GET", in: "GET / HTTP/1.1\r\n" + host + "\r\n", methods: "GET/1", te10: -1, ends: []int64{27}},
		{name: "bare LF line ends", in: "GET / HTTP/1.1\n" + "Host: x\n\n", methods: "GET/1", te10: -1, ends: []int64{24}},
		{name: "Content-Length body then a pipelined GET",
			in:      "POST /a HTTP/1.1\r\n" + host + "Content-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\n" + host + "\r\n",
			methods: "POST/1 GET/1", te10: -1, ends: []int64{53, 81}},
		{name: "CR LF skipped after a POST", in: "POST / HTTP/1.1\r\n" + host + "Content-Length: 0\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n" + host + "\r\n",
			methods: "POST/1 GET/1", te10: -1, ends: []int64{47, 78}},
		{name: "a fifth CR LF byte after a POST is a request line", in: "POST / HTTP/1.1\r\n" + host + "Content-Length: 0\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n",
			methods: "POST/1", te10: -1, ends: []int64{47}, gaveUp: "malformed request line"},
		{name: "CR LF after a GET is a request line", in: "GET / HTTP/1.1\r\n" + host + "\r\n\r\nGET / HTTP/1.1\r\n\r\n",
			methods: "GET/1", te10: -1, ends: []int64{27}, gaveUp: "malformed request line"},
		{name: "chunked body with extension and trailer",
			in:      chunkedPost + "5;a=1\r\nhello\r\n6 ;b\r\n world\r\n0\r\nX-Sum: 1\r\n continued\r\n\r\nGET / HTTP/1.1\r\n" + host + "\r\n",
			methods: "POST/1 GET/1", te10: -1, ends: []int64{111, 138}},
		{name: "chunked on HTTP/1.1 overrides Content-Length",
			in:      "POST / HTTP/1.1\r\n" + host + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
			methods: "POST/1", te10: -1, ends: []int64{80}},
		{name: "HTTP/1.0 with Transfer-Encoding is framed by Content-Length and flagged",
			in:      "POST / HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n1c\r\nGET /smuggled HTTP/1.0\r\n\r\n",
			methods: "POST/0 GET/0", te10: 0, ends: []int64{94, 120}},
		{name: "HTTP/1.0 with folded Transfer-Encoding", in: "POST / HTTP/1.0\r\ntransfer-ENCODING:\r\n chunked\r\n\r\n",
			methods: "POST/0", te10: 0, ends: []int64{49}},
		{name: "Transfer-Encoding with space before the colon is another field", in: "POST / HTTP/1.0\r\nTransfer-Encoding : chunked\r\n\r\n",
			methods: "POST/0", te10: -1, ends: []int64{48}},
		{name: "folded Content-Length", in: "POST / HTTP/1.1\r\n" + host + "Content-Length:\r\n 3\r\n \r\n\r\nabcGET / HTTP/1.1\r\n\r\n",
			methods: "POST/1 GET/1", te10: -1, ends: []int64{55, 73}},
		{name: "two equal Content-Length", in: "POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length:  2 \r\n\r\nab",
			methods: "POST/1", te10: -1, ends: []int64{61}},
		{name: "two different Content-Length", in: "POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 02\r\n\r\nab",
			methods: "POST/1", te10: -1, gaveUp: "Content-Length"},
		{name: "Content-Length list", in: "POST / HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\nab", methods: "POST/1", te10: -1, gaveUp: "Content-Length"},
		{name: "Content-Length 2^63", in: "POST / HTTP/1.1\r\nContent-Length: 9223372036854775808\r\n\r\n", methods: "POST/1", te10: -1, gaveUp: "Content-Length"},
		{name: "Content-Length 2^63-1 with leading zeros", in: "POST / HTTP/1.1\r\nContent-Length: 0009223372036854775807\r\n\r\nx",
			methods: "POST/1", te10: -1},
		{name: "empty Content-Length", in: "POST / HTTP/1.1\r\nContent-Length: \r\n\r\n", methods: "POST/1", te10: -1, gaveUp: "Content-Length"},
		{name: "OPTIONS *", in: "OPTIONS * HTTP/1.1\r\n" + host + "\r\n", methods: "OPTIONS/1", te10: -1, ends: []int64{31}},
		{name: "HTTP/1.x minor versions are HTTP/1.1", in: "POST / HTTP/1.7\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
			methods: "POST/7", te10: -1, ends: []int64{52}},

		// chunk-size lines
		{name: "whitespace after the chunk size", in: chunkedPost + "5 \r\nhello\r\n0\r\n\r\n", methods: "POST/1", te10: -1,
			err: "whitespace after the chunk size", passed: len(chunkedPost) + 2},
		{name: "tab after the chunk size", in: chunkedPost + "5\t\r\nhello\r\n0\r\n\r\n", methods: "POST/1", te10: -1,
			err: "whitespace after the chunk size", passed: len(chunkedPost) + 2},
		{name: "whitespace after the last chunk size", in: chunkedPost + "0 \r\n\r\n", methods: "POST/1", te10: -1,
			err: "whitespace after the chunk size", passed: len(chunkedPost) + 2},
		{name: "whitespace after a later chunk size", in: chunkedPost + "5\r\nhello\r\n3  \r\nabc\r\n0\r\n\r\n", methods: "POST/1", te10: -1,
			err: "whitespace after the chunk size", passed: len(chunkedPost) + 13},
		{name: "whitespace before an extension", in: chunkedPost + "5 \t;ext=1 \r\nhello\r\n0\r\n\r\n", methods: "POST/1", te10: -1},
		{name: "whitespace before the chunk size", in: chunkedPost + " 5\r\nhello\r\n0\r\n\r\n", methods: "POST/1", te10: -1,
			err: "must start with hex digits", passed: len(chunkedPost)},
		{name: "bare LF after the chunk size", in: chunkedPost + "5\nhello\r\n0\r\n\r\n", methods: "POST/1", te10: -1,
			err: "invalid byte", passed: len(chunkedPost) + 1},
		{name: "bare LF after an extension", in: chunkedPost + "5;x\nhello\r\n0\r\n\r\n", methods: "POST/1", te10: -1,
			err: "bare LF", passed: len(chunkedPost) + 3},
		{name: "CR inside the chunk-size line", in: chunkedPost + "5;x\ry\r\nhello\r\n0\r\n\r\n", methods: "POST/1", te10: -1,
			err: "CR without LF", passed: len(chunkedPost) + 4},
		{name: "17 hex digits", in: chunkedPost + "00000000000000005\r\nhello\r\n0\r\n\r\n", methods: "POST/1", te10: -1,
			err: "16 hex digits", passed: len(chunkedPost) + 16},
		{name: "16 hex digits", in: chunkedPost + "0000000000000005\r\nhello\r\n0\r\n\r\n", methods: "POST/1", te10: -1},
		{name: "negative chunk size", in: chunkedPost + "-5\r\nhello\r\n0\r\n\r\n", methods: "POST/1", te10: -1,
			err: "must start with hex digits", passed: len(chunkedPost)},
		{name: "chunk data longer than its size", in: chunkedPost + "3\r\nhello\r\n0\r\n\r\n", methods: "POST/1", te10: -1,
			err: "not followed by CRLF", passed: len(chunkedPost) + 6},
		{name: "chunk-size line of 4096 bytes", in: chunkedPost + "5;" + strings.Repeat("e", 4096-4) + "\r\nhello\r\n0\r\n\r\n", methods: "POST/1", te10: -1},
		{name: "chunk-size line of 4097 bytes", in: chunkedPost + "5;" + strings.Repeat("e", 4097-4) + "\r\nhello\r\n0\r\n\r\n", methods: "POST/1", te10: -1,
			err: "longer than 4096", passed: len(chunkedPost) + 4096},
		{name: "trailer starting with whitespace", in: chunkedPost + "0\r\n X: y\r\n\r\n", methods: "POST/1", te10: -1,
			err: "trailer section starts with whitespace", passed: len(chunkedPost) + 3},

		// giving up and stepping aside
		{name: "h2c prior knowledge", in: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00", te10: -1, h2c: true},
		{name: "HTTP/0.9", in: "GET /\r\n", te10: -1, gaveUp: "malformed request line"},
		{name: "HTTP/2.0 request line", in: "GET / HTTP/2.0\r\n\r\n", te10: -1, gaveUp: "not HTTP/1.x"},
		{name: "lower-case version", in: "GET / http/1.1\r\n\r\n", te10: -1, gaveUp: "malformed HTTP version"},
		{name: "CR in the request line", in: "GET / HTTP/1.1\rHost: x\r\n\r\n", te10: -1, gaveUp: "malformed HTTP version"},
		{name: "whitespace before the first field", in: "GET / HTTP/1.1\r\n Host: x\r\n\r\n", te10: -1, gaveUp: "whitespace before the first header field"},
		{name: "field without colon", in: "GET / HTTP/1.1\r\nNoColon\r\n\r\n", te10: -1, gaveUp: "without a colon"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			whole := parseAll([]byte(c.in), nil)
			var got []string
			te10 := -1
			for i, r := range whole.recs {
				got = append(got, fmt.Sprintf("%s/%d", r.method[:min(r.methodLen, 16)], r.minor))
				if r.te10 && te10 < 0 {
					te10 = i
				}
			}
			if strings.Join(got, " ") != c.methods || te10 != c.te10 {
				t.Errorf("records %v (te10 at %d), want %q (te10 at %d); %v", got, te10, c.methods, c.te10, whole)
			}
			if c.ends != nil && fmt.Sprint(whole.ends) != fmt.Sprint(c.ends) {
				t.Errorf("ends %v, want %v", whole.ends, c.ends)
			}
			switch {
			case c.err == "" && whole.err != nil:
				t.Errorf("unexpected violation: %v", whole.err)
			case c.err != "" && (whole.err == nil || !strings.Contains(whole.err.Error(), c.err) || !errors.Is(whole.err, ErrChunked)):
				t.Errorf("violation %v, want one about %q", whole.err, c.err)
			case c.err != "" && whole.passed != c.passed:
				t.Errorf("passed %d bytes before the violation, want %d", whole.passed, c.passed)
			case c.err == "" && whole.passed != len(c.in):
				t.Errorf("passed %d bytes of %d", whole.passed, len(c.in))
			}
			if (c.gaveUp == "") != (whole.gaveUp == "") || !strings.Contains(whole.gaveUp, c.gaveUp) {
				t.Errorf("gave up %q, want %q", whole.gaveUp, c.gaveUp)
			}
			if whole.h2c != c.h2c {
				t.Errorf("h2c %v, want %v", whole.h2c, c.h2c)
			}
			differential(t, []byte(c.in), nil)
			// Byte by byte, and in pieces of 3 and 7, it comes out the same.
			for _, pieces := range [][]int{{1}, {3, 7}} {
				if split := parseAll([]byte(c.in), pieces); split.String() != whole.String() {
					t.Errorf("in pieces %v:\n%v\nat once:\n%v", pieces, split, whole)
				}
			}
		})
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// httpFraming is how net/http frames data as requests, reading them as its
// server does (skipping up to 4 CR/LF bytes after a POST): each request's
// start, method, minor version and end, up to the first request it rejects
// or that is not HTTP/1.x. bodyFailed says the last request's header was
// read but its body failed; failedAt is where the reading had got to.
type httpFraming struct {
	starts, ends []int64
	methods      []string
	minors       []int
	bodyFailed   bool
	bodyErr      error
}

func netHTTPFraming(data []byte, tail error) httpFraming {
	cr := &countingReader{r: io.MultiReader(bytes.NewReader(data), errReader{tail})}
	br := bufio.NewReader(cr)
	pos := func() int64 { return cr.n - int64(br.Buffered()) }
	var f httpFraming
	lastPOST := false
	for {
		if lastPOST {
			peek, _ := br.Peek(4)
			n := 0
			for n < len(peek) && (peek[n] == '\r' || peek[n] == '\n') {
				n++
			}
			br.Discard(n)
		}
		start := pos()
		req, err := http.ReadRequest(br)
		if err != nil || req.ProtoMajor != 1 {
			return f
		}
		f.starts = append(f.starts, start)
		f.methods = append(f.methods, req.Method)
		f.minors = append(f.minors, req.ProtoMinor)
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			f.bodyFailed, f.bodyErr = true, err
			return f
		}
		f.ends = append(f.ends, pos())
		lastPOST = req.Method == "POST"
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// differential checks the parser against net/http on data: every request
// net/http reads in full from what the guard passes on is one the guard
// recorded at the same offsets; the guard gives up only where net/http
// rejects the request; and where net/http accepts a chunked body that the
// guard cuts, the reason is whitespace after a chunk size.
func differential(t *testing.T, data []byte, pieces []int) {
	t.Helper()
	g := parseAll(data, pieces)
	if whole := parseAll(data, nil); whole.String() != g.String() {
		t.Fatalf("in pieces %v:\n%v\nat once:\n%v\ninput %q", pieces, g, whole, data)
	}
	tail := io.EOF
	if g.err != nil {
		tail = g.err
	}
	n := netHTTPFraming(data[:g.passed], tail)
	for i := range n.starts {
		if i >= len(g.recs) {
			if g.gaveUp == "" && !g.h2c && g.err == nil {
				t.Fatalf("net/http read request %d at %d, the guard has no record of it and did not stop: %v\ninput %q", i, n.starts[i], g, data)
			}
			if g.gaveUp != "" {
				t.Fatalf("the guard gave up (%s) on request %d, which net/http accepts\ninput %q", g.gaveUp, i, data)
			}
			break
		}
		r := g.recs[i]
		if r.start != n.starts[i] || !r.is(n.methods[i], n.minors[i]) {
			t.Fatalf("request %d: net/http %s/%d at %d, guard %v\ninput %q", i, n.methods[i], n.minors[i], n.starts[i], g, data)
		}
		if i < len(n.ends) && (i >= len(g.ends) || g.ends[i] != n.ends[i]) {
			t.Fatalf("request %d ends at %d for net/http, guard %v\ninput %q", i, n.ends[i], g, data)
		}
	}
	if g.err != nil {
		// Was the guard stricter than net/http? Only about whitespace after
		// a chunk size.
		full := netHTTPFraming(data, io.EOF)
		if len(full.ends) > len(n.ends) && !strings.Contains(g.err.Error(), "whitespace after the chunk size") {
			t.Fatalf("the guard cut a body net/http accepts: %v\ninput %q", g.err, data)
		}
	}
}

func TestParserMatchesNetHTTP(t *testing.T) {
	for _, in := range seedCorpus() {
		for _, pieces := range [][]int{nil, {1}, {5, 2}} {
			differential(t, []byte(in), pieces)
		}
	}
}

// seedCorpus is valid, odd and broken request streams.
func seedCorpus() []string {
	h := "Host: x\r\n"
	chunked := "POST /c HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n"
	return []string{
		"GET / HTTP/1.1\r\n" + h + "\r\n",
		"GET / HTTP/1.1\r\n" + h + "\r\nGET /2 HTTP/1.1\r\n" + h + "\r\n",
		"POST / HTTP/1.1\r\n" + h + "Content-Length: 5\r\n\r\nhelloPOST / HTTP/1.1\r\nContent-Length: 1\r\n\r\nx\r\n\r\nGET / HTTP/1.0\r\n\r\n",
		chunked + "5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n" + h + "\r\n",
		chunked + "5;a=b\r\nhello\r\na ; x\r\n0123456789\r\n0\r\nT: 1\r\n\r\n",
		chunked + "5 \r\nhello\r\n0\r\n\r\n",
		chunked + "0 \r\n\r\n",
		chunked + "5\r\nhello\r\n0\r\n\n",
		chunked + "5\r\nhello\r\n0\r\nA: b\n\r\n",
		"POST / HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n1c\r\nGET /smuggled HTTP/1.0\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /s HTTP/1.1\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length:\r\n 3\r\n\r\nabc",
		"POST / HTTP/1.1\r\nContent-Length: 3\r\n \r\n\r\nabc",
		"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
		"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 03\r\n\r\nabc",
		"POST / HTTP/1.1\r\ncontent-length: 000\r\n\r\nGET / HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.1\nHost: x\n\nGET / HTTP/1.1\n\n",
		"GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\n" + h + "\r\nGET / HTTP/1.1\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"GET / HTTP/1.1\r\n\r\nGET / HTTP/9.9\r\n\r\n",
		"GET / HTTP/1.1\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n",
		"G / HTTP/1.1\r\n\r\n",
	}
}

// FuzzParser checks the parser against net/http's framing on arbitrary
// input, fed whole and in pieces of sizes taken from split.
func FuzzParser(f *testing.F) {
	for i, s := range seedCorpus() {
		f.Add([]byte(s), []byte{byte(i%7 + 1), 3})
	}
	f.Fuzz(func(t *testing.T, data, split []byte) {
		if len(data) > 1<<16 {
			return
		}
		pieces := make([]int, len(split))
		for i, b := range split {
			pieces[i] = int(b)
		}
		differential(t, data, pieces)
	})
}
