package pymarshal_test

import (
	"fmt"

	"github.com/hornbeam-go/hornbeam/pymarshal"
)

// Example builds a small WSGI environ with the Encoder, as the server does
// for every request, and decodes it back.
func Example() {
	var e pymarshal.Encoder
	e.BeginDict()
	e.Str("REQUEST_METHOD")
	e.Latin1Str("GET")
	e.Str("PATH_INFO")
	e.Latin1Str("/caf\xe9") // raw request bytes: 0xE9 is the code point U+00E9
	e.Str("wsgi.version")
	e.BeginTuple(2)
	e.Int(1)
	e.Int(0)
	e.Str("wsgi.multithread")
	e.Bool(false)
	e.EndDict()
	data := e.Data() // what the Python worker passes to marshal.loads
	fmt.Printf("%d bytes: %q\n", len(data), data[:20])

	v, err := pymarshal.Unmarshal(data)
	if err != nil {
		panic(err)
	}
	for _, item := range v.(pymarshal.Dict) {
		fmt.Printf("%v: %#v\n", item.Key, item.Value)
	}
	// Output:
	// 90 bytes: "{z\x0eREQUEST_METHODz\x03G"
	// REQUEST_METHOD: "GET"
	// PATH_INFO: "/café"
	// wsgi.version: pymarshal.Tuple{1, 0}
	// wsgi.multithread: false
}

// ExampleUnmarshal decodes the output of Python's
// marshal.dumps({'a': [1, 2.5, None], 'b': b'\x00'}, 2).
func ExampleUnmarshal() {
	data := []byte("{u\x01\x00\x00\x00a[\x03\x00\x00\x00i\x01\x00\x00\x00" +
		"g\x00\x00\x00\x00\x00\x00\x04@Nu\x01\x00\x00\x00bs\x01\x00\x00\x00\x000")
	v, err := pymarshal.Unmarshal(data)
	if err != nil {
		panic(err)
	}
	d := v.(pymarshal.Dict)
	a, _ := d.Get("a")
	b, _ := d.Get("b")
	fmt.Printf("a = %#v\nb = %#v\n", a, b)
	// Output:
	// a = pymarshal.List{1, 2.5, interface {}(nil)}
	// b = []byte{0x0}
}

// ExampleMarshal encodes Go values; map keys are sorted so the output is
// deterministic. Python reads it with marshal.loads.
func ExampleMarshal() {
	data, err := pymarshal.Marshal(map[string]any{
		"name":  "hornbeam",
		"ports": []any{8000, 8001},
		"big":   uint64(1) << 63,
	})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%q\n", data)

	_, err = pymarshal.Marshal(struct{}{})
	fmt.Println(err)
	// Output:
	// "{z\x03bigl\x05\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\b\x00z\x04namez\bhornbeamz\x05ports[\x02\x00\x00\x00i@\x1f\x00\x00iA\x1f\x00\x000"
	// pymarshal: unsupported Go type struct {}
}
