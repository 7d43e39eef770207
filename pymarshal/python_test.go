package pymarshal

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const python = "/usr/bin/python3"

var updateCorpus = flag.Bool("update-corpus", false, "write the marshal.dumps outputs of the Python samples to testdata/fuzz/FuzzUnmarshal")

// pythonSamples are the Go values of the objects in testdata/interop.py.
func pythonSamples() map[string]any {
	sharedStr := "shared-7"
	sharedTuple := Tuple{sharedStr, int64(1)}
	interned := "idéntifier"
	all256 := make([]byte, 256)
	for i := range all256 {
		all256[i] = byte(i)
	}
	bigTuple := make(Tuple, 300)
	for i := range bigTuple {
		bigTuple[i] = int64(i)
	}
	return map[string]any{
		"none":  nil,
		"bools": List{true, false},
		"ints": List{int64(0), int64(1), int64(-1), int64(math.MaxInt32), int64(1 << 31),
			int64(math.MinInt32), int64(math.MinInt32 - 1), int64(1 << 62), int64(math.MaxInt64),
			int64(math.MinInt64), pow2(63), add(neg(pow2(63)), -1), pow2(64), pow2(200), neg(pow2(200)),
			bigInt("12345678901234567890123")},
		"floats": List{0.0, math.Copysign(0, -1), 1.5, 0.1, math.Inf(1), math.Inf(-1), 1e300,
			5e-324, -2.5e-10},
		"nan": math.NaN(),
		"strs": List{"", "ascii", "café", "日本語", "😀", strings.Repeat("x", 300),
			strings.Repeat("é", 300), "\xed\xa0\x80", "a\x00b"},
		"bytes": List{[]byte{}, []byte{0, 0xff}, all256},
		"nested": Dict{
			{"a", List{int64(1), Tuple{int64(2), int64(3)}}},
			{"b", Dict{{"c", nil}}},
			{"e", Tuple{}},
			{"f", List{}},
			{"g", Dict{}},
			{"h", Tuple{Tuple{}}},
		},
		"sets": List{Set{}, FrozenSet{}, Set{int64(1)}, FrozenSet{"x"}, Set{Tuple{int64(1), int64(2)}},
			Set{int64(1), int64(2), int64(3)}, FrozenSet{FrozenSet{}}},
		"shared": List{sharedStr, sharedStr, sharedTuple, sharedTuple, interned, interned,
			pow2(100), pow2(100), 1.25, 1.25, []byte("abcabc"), []byte("abcabc"),
			List{int64(1)}, List{int64(1)}},
		"dict_keys": Dict{
			{int64(1), "a"},
			{Tuple{int64(1), "b"}, 2.5},
			{nil, true},
			{[]byte("k"), List{}},
			{FrozenSet{int64(1)}, int64(0)},
			{2.5, "f"},
			{false, int64(0)},
		},
		"environ": Dict{
			{"REQUEST_METHOD", "GET"},
			{"PATH_INFO", "/café"},
			{"QUERY_STRING", "a=1&b=2"},
			{"SERVER_PORT", "8000"},
			{"HTTP_HOST", "example.com"},
			{"wsgi.version", Tuple{int64(1), int64(0)}},
			{"wsgi.url_scheme", "http"},
			{"wsgi.multithread", false},
			{"wsgi.multiprocess", true},
			{"CONTENT_LENGTH", ""},
		},
		"big_tuple": bigTuple,
		"deep":      nested(150, nil),
	}
}

// goCase is marshal data written by the Go side, with the Python value it
// must load as: expr (a Python expression) or sample (a name in
// pythonSamples), and optionally the exact repr Python must print.
type goCase struct {
	name   string
	data   []byte
	expr   string
	sample string
	repr   string
	// probe: only ask whether marshal.loads accepts data.
	probe, pyAccepts bool
}

func enc(write func(e *Encoder)) []byte {
	var e Encoder
	write(&e)
	return bytes.Clone(e.Data())
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := Marshal(v)
	if err != nil {
		t.Fatalf("Marshal(%s): %v", show(v), err)
	}
	return b
}

func goCases(t *testing.T) []goCase {
	cases := []goCase{
		{name: "Latin1Str café", data: enc(func(e *Encoder) { e.Latin1Str("caf\xe9") }), expr: `'caf\xe9'`, repr: "'café'"},
		{name: "Latin1Str high bytes", data: enc(func(e *Encoder) {
			b := make([]byte, 0, 128)
			for c := 0x80; c < 0x100; c++ {
				b = append(b, byte(c))
			}
			e.Latin1Str(string(b))
		}), expr: `''.join(map(chr, range(128, 256)))`},
		{name: "Latin1Str long", data: enc(func(e *Encoder) { e.Latin1Str(strings.Repeat("x", 300) + "\xe9") }), expr: `'x' * 300 + '\xe9'`},
		{name: "Latin1Str long ascii", data: enc(func(e *Encoder) { e.Latin1Str(strings.Repeat("ab", 200)) }), expr: `'ab' * 200`},
		{name: "Int 2^40", data: enc(func(e *Encoder) { e.Int(1 << 40) }), expr: "2**40", repr: "1099511627776"},
		{name: "Int min", data: enc(func(e *Encoder) { e.Int(math.MinInt64) }), expr: "-2**63", repr: "-9223372036854775808"},
		{name: "Int max", data: enc(func(e *Encoder) { e.Int(math.MaxInt64) }), expr: "2**63-1"},
		{name: "Int 2^31", data: enc(func(e *Encoder) { e.Int(1 << 31) }), expr: "2**31"},
		{name: "Int -2^31", data: enc(func(e *Encoder) { e.Int(-1 << 31) }), expr: "-2**31"},
		{name: "Int -2^31-1", data: enc(func(e *Encoder) { e.Int(-1<<31 - 1) }), expr: "-2**31-1"},
		{name: "Int -5", data: enc(func(e *Encoder) { e.Int(-5) }), expr: "-5"},
		{name: "Bool true", data: enc(func(e *Encoder) { e.Bool(true) }), expr: "True", repr: "True"},
		{name: "Bool false", data: enc(func(e *Encoder) { e.Bool(false) }), expr: "False", repr: "False"},
		{name: "None", data: enc(func(e *Encoder) { e.None() }), expr: "None", repr: "None"},
		{name: "Float NaN", data: enc(func(e *Encoder) { e.Float(math.NaN()) }), expr: "float('nan')", repr: "nan"},
		{name: "Float -0", data: enc(func(e *Encoder) { e.Float(math.Copysign(0, -1)) }), expr: "-0.0", repr: "-0.0"},
		{name: "Float -Inf", data: enc(func(e *Encoder) { e.Float(math.Inf(-1)) }), expr: "float('-inf')", repr: "-inf"},
		{name: "Float 0.1", data: enc(func(e *Encoder) { e.Float(0.1) }), expr: "0.1", repr: "0.1"},
		{name: "Str CJK", data: enc(func(e *Encoder) { e.Str("日本") }), expr: `'\u65e5\u672c'`, repr: "'日本'"},
		{name: "Str invalid UTF-8", data: enc(func(e *Encoder) { e.Str("a\xffb\xc3") }), expr: `'a\ufffdb\ufffd'`},
		{name: "Str surrogate", data: enc(func(e *Encoder) { e.Str("\xed\xa0\x80") }), expr: `'\ud800'`},
		{name: "Str long ascii", data: enc(func(e *Encoder) { e.Str(strings.Repeat("y", 1000)) }), expr: `'y' * 1000`},
		{name: "Bytes", data: enc(func(e *Encoder) {
			b := make([]byte, 256)
			for i := range b {
				b[i] = byte(i)
			}
			e.Bytes(b)
		}), expr: "bytes(range(256))"},
		{name: "Encoder nested", data: enc(func(e *Encoder) {
			e.BeginDict()
			e.Str("list")
			e.BeginList(3)
			e.Int(1)
			e.Str("two")
			e.BeginDict()
			e.EndDict()
			e.Str("tuple")
			e.BeginTuple(300)
			for i := range 300 {
				e.Int(int64(i))
			}
			e.Int(7)
			e.BeginTuple(0)
			e.EndDict()
		}), expr: "{'list': [1, 'two', {}], 'tuple': tuple(range(300)), 7: ()}"},
		{name: "environ", data: enc(func(e *Encoder) { encodeEnviron(e, &sampleRequest) }), expr: sampleEnvironPy},
		{name: "Marshal uint64 max", data: mustMarshal(t, uint64(math.MaxUint64)), expr: "2**64-1"},
		{name: "Marshal big -2^200-7", data: mustMarshal(t, add(neg(pow2(200)), -7)), expr: "-2**200-7"},
		{name: "Marshal big 2^1000+1", data: mustMarshal(t, add(pow2(1000), 1)), expr: "2**1000+1"},
		{name: "Marshal map", data: mustMarshal(t, map[string]any{"b": []string{"x"}, "a": map[string]string{"k": "v"}, "c": float32(0.5)}),
			expr: "{'a': {'k': 'v'}, 'b': ['x'], 'c': 0.5}"},
	}
	for name, v := range pythonSamples() {
		cases = append(cases, goCase{name: "Marshal sample " + name, data: mustMarshal(t, v), sample: name})
	}
	// The decoder's test inputs: CPython must agree on what is valid.
	for _, c := range decodeCases {
		cases = append(cases, goCase{name: "valid input " + c.name, data: []byte(c.in), probe: true, pyAccepts: true})
	}
	for _, c := range decodeErrorCases {
		if c.name == "huge list" {
			// CPython allocates the 2^31-element list before reading
			// elements, then spends seconds freeing it.
			continue
		}
		cases = append(cases, goCase{name: "invalid input " + c.name, data: []byte(c.in), probe: true, pyAccepts: c.pyAccepts})
	}
	return cases
}

type pyResult struct {
	Name    string `json:"name"`
	Repr    string `json:"repr"`
	OK      bool   `json:"ok"`
	Error   string `json:"error"`
	Accepts *bool  `json:"accepts"`
	Sample  string `json:"sample"`
	Version int    `json:"version"`
	Hex     string `json:"hex"`
}

// TestPython runs the real interpreter once: it loads the Go encoder's output
// and dumps the sample objects with every marshal version for the Go decoder.
func TestPython(t *testing.T) {
	if _, err := os.Stat(python); err != nil {
		t.Skipf("%s not available: %v", python, err)
	}
	cases := goCases(t)
	var stdin bytes.Buffer
	for _, c := range cases {
		rec := map[string]string{"name": c.name, "hex": hex.EncodeToString(c.data)}
		switch {
		case c.probe:
			rec["probe"] = "1"
		case c.expr != "":
			rec["expr"] = c.expr
		default:
			rec["sample"] = c.sample
		}
		line, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		stdin.Write(append(line, '\n'))
	}
	cmd := exec.Command(python, "-I", filepath.Join("testdata", "interop.py"))
	cmd.Stdin = &stdin
	cmd.Env = append(os.Environ(), "PYTHONHASHSEED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", python, err, stderr.Bytes())
	}

	byName := map[string]goCase{}
	for _, c := range cases {
		byName[c.name] = c
	}
	samples := pythonSamples()
	seenGo, seenPy := 0, map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r pyResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("bad output line %q: %v", sc.Text(), err)
		}
		if r.Name != "" { // (a) Go -> Python
			seenGo++
			c := byName[r.Name]
			switch {
			case c.probe:
				if r.Accepts == nil || *r.Accepts != c.pyAccepts {
					t.Errorf("%s: marshal.loads(%q): accepted %v, want %v", r.Name, c.data, r.Accepts != nil && *r.Accepts, c.pyAccepts)
				}
			case r.Error != "":
				t.Errorf("%s: Python failed to load %x: %s", r.Name, c.data, r.Error)
			case !r.OK:
				t.Errorf("%s: Python loaded %s, want %s", r.Name, r.Repr, c.expr+c.sample)
			case c.repr != "" && r.Repr != c.repr:
				t.Errorf("%s: repr %s, want %s", r.Name, r.Repr, c.repr)
			}
			continue
		}
		// (b) Python -> Go
		seenPy[r.Sample]++
		data, err := hex.DecodeString(r.Hex)
		if err != nil {
			t.Fatal(err)
		}
		want, ok := samples[r.Sample]
		if !ok {
			t.Errorf("unknown sample %q", r.Sample)
			continue
		}
		got, err := Unmarshal(data)
		if err != nil {
			t.Errorf("sample %s version %d: Unmarshal(%x): %v", r.Sample, r.Version, data, err)
			continue
		}
		if !equal(got, want) {
			t.Errorf("sample %s version %d: got %s, want %s", r.Sample, r.Version, show(got), show(want))
		}
		if *updateCorpus {
			writeCorpus(t, fmt.Sprintf("python-%s-v%d", r.Sample, r.Version), data)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if seenGo != len(cases) {
		t.Errorf("Python answered %d of %d Go cases", seenGo, len(cases))
	}
	for name := range samples {
		if seenPy[name] != 5 {
			t.Errorf("sample %s: %d versions from Python, want 5", name, seenPy[name])
		}
	}
}

// writeCorpus writes data as a seed of FuzzUnmarshal, in the format of
// "go test fuzz v1" corpus files.
func writeCorpus(t *testing.T, name string, data []byte) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", "FuzzUnmarshal")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
