package accesslog

import (
	"fmt"
	"net/http"
	"strings"
)

// DefaultFormat is gunicorn's default access log format.
const DefaultFormat = `%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"`

// kind is what one part of a parsed format writes.
type kind uint8

const (
	kLiteral     kind = iota
	kRemote           // h
	kDash             // l
	kUser             // u
	kTime             // t
	kRequestLine      // r
	kMethod           // m
	kPath             // U
	kQuery            // q
	kProto            // H
	kStatus           // s
	kBytes            // B
	kBytesCLF         // b
	kReferer          // f
	kUserAgent        // a
	kSeconds          // T
	kMicros           // D
	kMillis           // M
	kDecimal          // L
	kPID              // p
	kReqHeader        // {name}i
	kRespHeader       // {name}o
	kEnv              // {name}e
)

var simpleAtoms = map[string]kind{
	"h": kRemote, "l": kDash, "u": kUser, "t": kTime, "r": kRequestLine,
	"m": kMethod, "U": kPath, "q": kQuery, "H": kProto, "s": kStatus,
	"B": kBytes, "b": kBytesCLF, "f": kReferer, "a": kUserAgent,
	"T": kSeconds, "D": kMicros, "M": kMillis, "L": kDecimal, "p": kPID,
}

// part is one piece of a parsed format: literal text or an atom.
type part struct {
	kind kind
	text string // the literal, the canonical header name, or the variable name
}

// parseFormat parses a gunicorn (Python %-style) access log format:
// literal text, "%%" for a percent sign, and atoms "%(NAME)s".
func parseFormat(format string) ([]part, error) {
	var parts []part
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			parts = append(parts, part{kind: kLiteral, text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(format); {
		c := format[i]
		if c != '%' {
			lit.WriteByte(c)
			i++
			continue
		}
		if i+1 < len(format) && format[i+1] == '%' {
			lit.WriteByte('%')
			i += 2
			continue
		}
		if i+1 >= len(format) || format[i+1] != '(' {
			return nil, fmt.Errorf("access log format: '%%' at offset %d is not followed by '(' or '%%': write atoms as %%(NAME)s and a literal percent sign as %%%%", i)
		}
		end := strings.IndexByte(format[i+2:], ')')
		if end < 0 {
			return nil, fmt.Errorf("access log format: unterminated atom at offset %d: %q", i, format[i:])
		}
		name := format[i+2 : i+2+end]
		j := i + 2 + end + 1 // after ')'
		if j >= len(format) || format[j] != 's' {
			return nil, fmt.Errorf("access log format: atom %%(%s) at offset %d must end in 's', as in %%(%s)s", name, i, name)
		}
		p, err := parseAtom(name)
		if err != nil {
			return nil, err
		}
		flush()
		parts = append(parts, p)
		i = j + 1
	}
	flush()
	return parts, nil
}

func parseAtom(name string) (part, error) {
	if k, ok := simpleAtoms[name]; ok {
		return part{kind: k}, nil
	}
	if len(name) >= 3 && name[0] == '{' && name[len(name)-2] == '}' {
		inner := name[1 : len(name)-2]
		if inner == "" {
			return part{}, fmt.Errorf("access log format: empty name in atom %%(%s)s", name)
		}
		switch name[len(name)-1] {
		case 'i':
			return part{kind: kReqHeader, text: http.CanonicalHeaderKey(inner)}, nil
		case 'o':
			return part{kind: kRespHeader, text: http.CanonicalHeaderKey(inner)}, nil
		case 'e':
			return part{kind: kEnv, text: inner}, nil
		}
	}
	return part{}, fmt.Errorf("access log format: unknown atom %%(%s)s (known: h l u t r m U q H s B b f a T D M L p {header}i {header}o {variable}e)", name)
}
