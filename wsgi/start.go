package wsgi

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/hornbeam-go/hornbeam/internal/httpwsgi"
	"github.com/hornbeam-go/hornbeam/pymarshal"
)

// decodeStart reads a Start frame: marshal (status, [(name, value), ...])
// as the worker writes it with marshal.dumps(obj, 2). Header values come
// back as the latin-1 bytes of their code points.
//
// Every response has one, so the usual shape (a tuple holding a str and a
// list of 2-tuples of str, the only shape version 2 writes for them) is
// read directly; anything else goes through the general decoder.
func decodeStart(p []byte) (status string, headers [][2]string, err error) {
	if status, headers, ok := decodeStartFast(p); ok {
		return status, headers, nil
	}
	v, err := pymarshal.Unmarshal(p)
	t, ok := v.(pymarshal.Tuple)
	if err != nil || !ok || len(t) != 2 {
		return "", nil, errors.New("malformed Start frame")
	}
	status, ok = t[0].(string)
	if !ok {
		return "", nil, fmt.Errorf("the status is a %T, not a str", t[0])
	}
	headers, err = decodeHeaders(t[1])
	return status, headers, err
}

// decodeStartFast parses the usual shape; ok is false for anything else,
// including invalid text, which the general path then reports.
func decodeStartFast(p []byte) (status string, headers [][2]string, ok bool) {
	i := 0
	count := func(code byte) (int, bool) {
		if i+5 > len(p) || p[i] != code {
			return 0, false
		}
		n := int(int32(binary.LittleEndian.Uint32(p[i+1:])))
		i += 5
		return n, n >= 0
	}
	str := func() (string, bool) {
		n, ok := count('u')
		if !ok || n > len(p)-i {
			return "", false
		}
		s := p[i : i+n]
		i += n
		for _, c := range s {
			if c >= 0x80 {
				return "", false // non-ASCII: the general path converts it
			}
		}
		return string(s), true
	}
	if n, ok := count('('); !ok || n != 2 {
		return "", nil, false
	}
	if status, ok = str(); !ok {
		return "", nil, false
	}
	n, ok := count('[')
	if !ok || n > len(p)/16 {
		return "", nil, false
	}
	headers = make([][2]string, n)
	for k := range headers {
		if m, ok := count('('); !ok || m != 2 {
			return "", nil, false
		}
		name, ok1 := str()
		value, ok2 := str()
		if !ok1 || !ok2 || !httpwsgi.ValidHeader(name, value) {
			return "", nil, false
		}
		headers[k] = [2]string{name, value}
	}
	return status, headers, i == len(p)
}
