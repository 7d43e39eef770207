package httpguard

import (
	"bytes"
	"errors"
	"fmt"
	"math"
)

// ErrChunked is wrapped by the read error a Conn returns in place of a
// chunked request body that breaks RFC 9112 section 7.1.
var ErrChunked = errors.New("httpguard: malformed chunked body")

// maxChunkLine is the longest chunk-size line net/http reads, CRLF
// included (the size of its bufio.Reader; longer lines fail there).
const maxChunkLine = 4096

// state is where the parser is in the byte stream.
type state uint8

const (
	sRequest      state = iota // before a request line (after a POST, up to 4 CR/LF are skipped, as net/http does)
	sRequestLine               // in the request line
	sLineStart                 // at the start of a header line
	sLineCR                    // after a CR that starts a header line
	sName                      // in a field name
	sValue                     // in a field value or a continuation line
	sBody                      // in a Content-Length body
	sChunkSize                 // in the hex digits of a chunk-size line
	sChunkBWS                  // in whitespace after the chunk size: only a ';' may follow
	sChunkExt                  // in a chunk extension
	sChunkLF                   // after the CR ending a chunk-size line
	sChunkData                 // in chunk data
	sChunkCR                   // after chunk data: CR expected
	sChunkDataLF               // after chunk data and CR: LF expected
	sTrailerStart              // at the start of a trailer line
	sTrailerCR                 // after a CR that starts a trailer line
	sTrailerLine               // in a trailer line
	sStopped                   // not inspecting any more: stepped aside or gave up
)

// fieldKind is what the field being parsed means for framing.
type fieldKind uint8

const (
	fieldOther fieldKind = iota
	fieldContentLength
	fieldTransferEncoding
)

// record is what the parser learnt about one request, kept until the
// request is checked.
type record struct {
	method    [16]byte // the first bytes of the method
	methodLen int      // its whole length
	minor     uint8    // HTTP/1.minor
	star      bool     // the request target is "*"
	te10      bool     // Transfer-Encoding on an HTTP/1.0 request
	close     bool     // the parser gave up after its header: its body is not followed
	start     int64    // stream offset of the request line
}

// is reports whether the record is for a request with this method and
// minor version.
func (r *record) is(method string, minor int) bool {
	if len(method) != r.methodLen || minor != int(r.minor) {
		return false
	}
	n := min(len(method), len(r.method))
	return string(r.method[:n]) == method[:n]
}

// clValue parses a Content-Length value as it streams by, the way net/http
// reads it: whitespace around one run of decimal digits, at most 2^63-1.
// Two values are the same field value when their digits are the same
// string (net/http compares them as strings).
type clValue struct {
	phase uint8  // 0 before the digits, 1 in them, 2 after them
	bad   bool   // anything else seen, or too large
	zeros int64  // leading zeros
	sig   int    // significant digits
	n     uint64 // their value
}

func (v *clValue) add(c byte) {
	switch {
	case c == ' ' || c == '\t' || c == '\r':
		if v.phase == 1 {
			v.phase = 2
		}
	case '0' <= c && c <= '9':
		if v.phase == 2 {
			v.bad = true
			return
		}
		v.phase = 1
		if v.sig == 0 && c == '0' {
			v.zeros++
			return
		}
		v.sig++
		if v.sig > 19 {
			v.bad = true
			return
		}
		v.n = v.n*10 + uint64(c-'0')
	default:
		v.bad = true
	}
}

func (v *clValue) valid() bool { return !v.bad && v.phase != 0 && v.n <= math.MaxInt64 }

// parser follows the HTTP/1.x requests in a byte stream exactly as
// net/http frames them (request line, header fields with obs-fold,
// Content-Length, chunked bodies with trailers), without buffering more
// than a few bytes. It never changes bytes; feed reports where a
// violation starts, and the caller passes on only the bytes before it.
//
// The rules it enforces itself are the ones net/http does not:
//   - an HTTP/1.0 request with Transfer-Encoding is faulty framing (RFC
//     9112 6.1): noted in its record, for the handler to reject;
//   - a chunk size is hex digits only; whitespace may follow it only before
//     a ';' chunk extension (RFC 9112 7.1). net/http trims trailing
//     whitespace: "5 \r\n" is a violation here.
//
// In a chunked body, anything it does not accept is a violation (net/http
// rejects all of it too, except the whitespace above): the body read fails
// there, so nothing after it is ever read as a request. Elsewhere, what it
// cannot follow (an unknown version, a malformed header net/http rejects,
// an invalid Content-Length) makes it give up: it stops inspecting and the
// connection is closed after the request being served.
type parser struct {
	st  state
	off int64 // stream offset of the next byte

	reqs     int64 // requests whose headers were parsed
	prevPOST bool  // the last request was a POST
	skipCRLF int   // CR/LF bytes that may still be skipped before the request line
	start    int64 // offset of the current request line

	// request line
	sp        int // spaces seen (2 at most counted)
	method    [16]byte
	methodLen int
	targetLen int
	target0   byte
	proto     [16]byte
	protoLen  int
	minor     uint8

	// header fields
	fields   int                            // field lines seen
	name     [len("transfer-encoding")]byte // the first bytes of the field name, as sent
	nameLen  int
	kind     fieldKind
	hasTE    bool
	clFields int
	cl       clValue // the Content-Length field being read
	clFirst  clValue // the first one
	clBad    bool    // an invalid value, or two that differ

	// chunked body
	size    uint64 // chunk size being read, then data left in the chunk
	digits  int    // hex digits of the size
	lineLen int    // bytes of the chunk-size line so far
	first   bool   // at the first trailer line
	remain  uint64 // Content-Length bytes left

	out    []record // records of requests parsed during the current feed
	gaveUp string   // why the parser gave up, if it did
	h2c    bool     // stepped aside for HTTP/2 with prior knowledge
	ends   []int64  // with trace: the offset after each request, for tests
	trace  bool
}

// stop makes the parser pass everything on from now on.
func (p *parser) stop(reason string) {
	p.st = sStopped
	if reason != "" && p.gaveUp == "" {
		p.gaveUp = reason
	}
}

// violation is the error for a chunked body broken at the current byte.
func violation(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrChunked}, args...)...)
}

// feed parses the next bytes of the stream. It returns how many of them may
// be passed on: len(b), or fewer with an error when a violation starts
// there. After a violation the parser must not be fed again.
func (p *parser) feed(b []byte) (int, error) {
	base := p.off
	i, err := p.run(b)
	p.off = base + int64(i)
	return i, err
}

func (p *parser) run(b []byte) (int, error) {
	i := 0
	for i < len(b) {
		switch p.st {
		case sStopped:
			return len(b), nil

		case sBody:
			k := min(uint64(len(b)-i), p.remain)
			i += int(k)
			p.remain -= k
			if p.remain == 0 {
				p.endMessage(p.off + int64(i))
			}

		case sChunkData:
			k := min(uint64(len(b)-i), p.size)
			i += int(k)
			p.size -= k
			if p.size == 0 {
				p.st = sChunkCR
			}

		case sRequest:
			if c := b[i]; p.skipCRLF > 0 && (c == '\r' || c == '\n') {
				p.skipCRLF--
				i++
				continue
			}
			p.startRequest(p.off + int64(i))

		case sRequestLine:
			j := bytes.IndexByte(b[i:], '\n')
			if j < 0 {
				p.requestLine(b[i:])
				i = len(b)
				continue
			}
			p.requestLine(b[i : i+j])
			i += j + 1
			p.endRequestLine()

		case sLineStart:
			switch b[i] {
			case '\n':
				i++
				p.endHeaders(p.off + int64(i))
			case '\r':
				i++
				p.st = sLineCR
			case ' ', '\t':
				if p.fields == 0 {
					p.stop("whitespace before the first header field")
					continue
				}
				// obs-fold: net/http joins the lines with a space.
				if p.kind == fieldContentLength {
					p.cl.add(' ')
				}
				p.st = sValue
			default:
				p.endField()
				p.nameLen = 0
				p.kind = fieldOther
				p.st = sName
			}

		case sLineCR:
			if b[i] != '\n' {
				p.stop("CR at the start of a header line")
				continue
			}
			i++
			p.endHeaders(p.off + int64(i))

		case sName:
			seg := b[i:]
			colon := bytes.IndexByte(seg, ':')
			if colon >= 0 {
				seg = seg[:colon]
			}
			if bytes.IndexByte(seg, '\n') >= 0 {
				p.stop("header line without a colon")
				continue
			}
			if p.nameLen < len(p.name) {
				copy(p.name[p.nameLen:], seg)
			}
			p.nameLen += len(seg)
			i += len(seg)
			if colon >= 0 {
				i++
				p.startValue()
			}

		case sValue:
			j := bytes.IndexByte(b[i:], '\n')
			end := len(b)
			if j >= 0 {
				end = i + j
			}
			if p.kind == fieldContentLength {
				for _, c := range b[i:end] {
					p.cl.add(c)
				}
			}
			i = end
			if j >= 0 {
				i++
				p.st = sLineStart
			}

		case sChunkSize:
			c := b[i]
			p.lineLen++
			switch d := hexDigit(c); {
			case d >= 0:
				if p.digits == 16 {
					return i, violation("chunk size of more than 16 hex digits")
				}
				p.size = p.size<<4 | uint64(d)
				p.digits++
			case p.digits == 0:
				return i, violation("a chunk-size line must start with hex digits")
			case c == '\r':
				p.st = sChunkLF
			case c == ';':
				p.st = sChunkExt
			case c == ' ' || c == '\t':
				p.st = sChunkBWS
			default:
				return i, violation("invalid byte %q after the chunk size", c)
			}
			i++

		case sChunkBWS:
			c := b[i]
			p.lineLen++
			switch c {
			case ' ', '\t':
				if p.lineLen > maxChunkLine {
					return i, violation("chunk-size line longer than %d bytes", maxChunkLine)
				}
			case ';':
				p.st = sChunkExt
			case '\r', '\n':
				return i, violation("whitespace after the chunk size (RFC 9112 7.1 allows it only before a ';' extension)")
			default:
				return i, violation("invalid byte %q after the chunk size", c)
			}
			i++

		case sChunkExt:
			j := bytes.IndexAny(b[i:], "\r\n")
			if j < 0 {
				p.lineLen += len(b) - i
				i = len(b)
			} else {
				p.lineLen += j + 1
				i += j
				if b[i] == '\n' {
					return i, violation("chunk-size line ends with a bare LF")
				}
				i++
				p.st = sChunkLF
			}
			if p.lineLen > maxChunkLine {
				return i, violation("chunk-size line longer than %d bytes", maxChunkLine)
			}

		case sChunkLF:
			if b[i] != '\n' {
				return i, violation("CR without LF in a chunk-size line")
			}
			p.lineLen++
			if p.lineLen > maxChunkLine {
				return i, violation("chunk-size line longer than %d bytes", maxChunkLine)
			}
			i++
			if p.size == 0 {
				p.st = sTrailerStart
				p.first = true
				continue
			}
			p.st = sChunkData

		case sChunkCR, sChunkDataLF:
			want := byte('\r')
			if p.st == sChunkDataLF {
				want = '\n'
			}
			if b[i] != want {
				return i, violation("chunk data not followed by CRLF")
			}
			i++
			if p.st == sChunkCR {
				p.st = sChunkDataLF
			} else {
				p.startChunk()
			}

		case sTrailerStart:
			switch c := b[i]; {
			case c == '\n':
				i++
				p.endMessage(p.off + int64(i))
			case c == '\r':
				i++
				p.st = sTrailerCR
			case (c == ' ' || c == '\t') && p.first:
				return i, violation("trailer section starts with whitespace")
			default:
				p.st = sTrailerLine
			}
			p.first = false

		case sTrailerCR:
			if b[i] != '\n' {
				return i, violation("CR at the start of a trailer line")
			}
			i++
			p.endMessage(p.off + int64(i))

		case sTrailerLine:
			j := bytes.IndexByte(b[i:], '\n')
			if j < 0 {
				i = len(b)
				continue
			}
			i += j + 1
			p.st = sTrailerStart
		}
	}
	return i, nil
}

func hexDigit(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// startRequest resets the per-request state at the request line's first byte.
func (p *parser) startRequest(off int64) {
	p.st = sRequestLine
	p.start = off
	p.sp, p.methodLen, p.targetLen, p.target0, p.protoLen = 0, 0, 0, 0, 0
	p.fields, p.kind, p.hasTE, p.clFields, p.clBad = 0, fieldOther, false, 0, false
}

// requestLine takes in bytes of the request line (no LF). net/http splits
// it at the first two spaces: method, target, protocol.
func (p *parser) requestLine(b []byte) {
	for len(b) > 0 {
		switch p.sp {
		case 0:
			c := b[0]
			b = b[1:]
			if c == ' ' {
				p.sp = 1
				continue
			}
			if p.methodLen < len(p.method) {
				p.method[p.methodLen] = c
			}
			p.methodLen++
		case 1:
			j := bytes.IndexByte(b, ' ')
			if j < 0 {
				j = len(b)
			} else {
				p.sp = 2
			}
			if p.targetLen == 0 && j > 0 {
				p.target0 = b[0]
			}
			p.targetLen += j
			b = b[min(j+1, len(b)):]
		default:
			for _, c := range b {
				if p.protoLen < len(p.proto) {
					p.proto[p.protoLen] = c
				}
				p.protoLen++
			}
			return
		}
	}
}

// endRequestLine checks the version once the request line is complete.
func (p *parser) endRequestLine() {
	if p.sp < 2 {
		p.stop("malformed request line")
		return
	}
	// bufio.Reader.ReadLine drops one CR before the LF.
	if p.protoLen > 0 && p.protoLen <= len(p.proto) && p.proto[p.protoLen-1] == '\r' {
		p.protoLen--
	}
	v := p.proto[:min(p.protoLen, len(p.proto))]
	if p.protoLen != 8 || string(v[:5]) != "HTTP/" || v[6] != '.' || v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9' {
		p.stop("malformed HTTP version")
		return
	}
	if v[5] != '1' {
		if p.reqs == 0 && v[5] == '2' && v[7] == '0' && p.methodLen == 3 && string(p.method[:3]) == "PRI" && p.targetLen == 1 && p.target0 == '*' {
			p.h2c = true // HTTP/2 with prior knowledge: not ours to parse
			p.stop("")
			return
		}
		p.stop("not HTTP/1.x")
		return
	}
	p.minor = v[7] - '0'
	p.st = sLineStart
}

// startValue classifies the field whose colon was just read.
func (p *parser) startValue() {
	p.fields++
	p.st = sValue
	name := p.name[:min(p.nameLen, len(p.name))]
	switch {
	case p.nameLen == len("content-length") && equalFold(name, "content-length"):
		p.kind = fieldContentLength
		p.clFields++
		p.cl = clValue{}
	case p.nameLen == len("transfer-encoding") && equalFold(name, "transfer-encoding"):
		p.kind = fieldTransferEncoding
		p.hasTE = true
	default:
		p.kind = fieldOther
	}
}

// equalFold reports whether b is lower, in ASCII letters of any case.
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// endField finishes the field before a new field line or the end of the
// header section (a field ends where no continuation line follows).
func (p *parser) endField() {
	if p.kind != fieldContentLength {
		return
	}
	p.kind = fieldOther
	if !p.cl.valid() {
		p.clBad = true
	}
	if p.clFields == 1 {
		p.clFirst = p.cl
	} else if p.cl != p.clFirst {
		p.clBad = true
	}
}

// endHeaders records the request and starts its body, framed as net/http
// frames it: chunked when an HTTP/1.1 request has Transfer-Encoding (net/http
// refuses any other coding), else Content-Length, else no body. net/http
// ignores Transfer-Encoding on HTTP/1.0 requests.
func (p *parser) endHeaders(off int64) {
	p.endField()
	rec := record{methodLen: p.methodLen, minor: p.minor, te10: p.minor == 0 && p.hasTE, start: p.start}
	copy(rec.method[:], p.method[:min(p.methodLen, len(p.method))])
	rec.star = p.targetLen == 1 && p.target0 == '*'
	rec.close = p.clFields > 0 && p.clBad
	p.out = append(p.out, rec)
	p.reqs++
	p.prevPOST = p.methodLen == 4 && string(p.method[:4]) == "POST"
	switch {
	case p.clFields > 0 && p.clBad:
		p.stop("invalid Content-Length")
	case p.hasTE && p.minor >= 1:
		p.startChunk()
	case p.clFields > 0 && p.clFirst.n > 0:
		p.remain = p.clFirst.n
		p.st = sBody
	default:
		p.endMessage(off)
	}
}

func (p *parser) startChunk() {
	p.st = sChunkSize
	p.size, p.digits, p.lineLen = 0, 0, 0
}

// endMessage is reached after the last byte of a request.
func (p *parser) endMessage(off int64) {
	if p.trace {
		p.ends = append(p.ends, off)
	}
	p.st = sRequest
	p.skipCRLF = 0
	if p.prevPOST {
		p.skipCRLF = 4 // net/http: "RFC 7230 section 3 tolerance for old buggy clients"
	}
}
