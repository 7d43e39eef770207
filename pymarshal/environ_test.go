package pymarshal

import "testing"

// testRequest holds what a server knows about a request, as byte strings.
type testRequest struct {
	method, path, query, contentType, contentLength string
	remoteAddr, remotePort, host, userAgent, accept string
	acceptEncoding, acceptLanguage, cookie          string
	requestID                                       int64
}

var sampleRequest = testRequest{
	method:         "GET",
	path:           "/caf\xe9/menu",
	query:          "lang=fr&page=2",
	contentType:    "",
	contentLength:  "",
	remoteAddr:     "192.0.2.10",
	remotePort:     "52814",
	host:           "example.com",
	userAgent:      "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
	accept:         "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
	acceptEncoding: "gzip, deflate, br",
	acceptLanguage: "fr-FR,fr;q=0.9,en;q=0.5",
	cookie:         "session=abc123; theme=dark",
	requestID:      1 << 40,
}

// encodeEnviron writes a typical 22-key WSGI environ the way the server does.
func encodeEnviron(e *Encoder, r *testRequest) {
	e.BeginDict()
	kv := func(k, v string) { e.Str(k); e.Latin1Str(v) }
	kv("REQUEST_METHOD", r.method)
	kv("SCRIPT_NAME", "")
	kv("PATH_INFO", r.path)
	kv("QUERY_STRING", r.query)
	kv("CONTENT_TYPE", r.contentType)
	kv("CONTENT_LENGTH", r.contentLength)
	kv("SERVER_NAME", "example.com")
	kv("SERVER_PORT", "8000")
	kv("SERVER_PROTOCOL", "HTTP/1.1")
	kv("REMOTE_ADDR", r.remoteAddr)
	kv("REMOTE_PORT", r.remotePort)
	kv("HTTP_HOST", r.host)
	kv("HTTP_USER_AGENT", r.userAgent)
	kv("HTTP_ACCEPT", r.accept)
	kv("HTTP_ACCEPT_ENCODING", r.acceptEncoding)
	kv("HTTP_ACCEPT_LANGUAGE", r.acceptLanguage)
	kv("HTTP_COOKIE", r.cookie)
	e.Str("wsgi.version")
	e.BeginTuple(2)
	e.Int(1)
	e.Int(0)
	kv("wsgi.url_scheme", "http")
	e.Str("wsgi.multithread")
	e.Bool(false)
	e.Str("wsgi.multiprocess")
	e.Bool(true)
	e.Str("hornbeam.request_id")
	e.Int(r.requestID)
	e.EndDict()
}

// sampleEnvironPy is the Python value encodeEnviron(sampleRequest) must give.
const sampleEnvironPy = `{
 'REQUEST_METHOD': 'GET', 'SCRIPT_NAME': '', 'PATH_INFO': '/caf\xe9/menu',
 'QUERY_STRING': 'lang=fr&page=2', 'CONTENT_TYPE': '', 'CONTENT_LENGTH': '',
 'SERVER_NAME': 'example.com', 'SERVER_PORT': '8000', 'SERVER_PROTOCOL': 'HTTP/1.1',
 'REMOTE_ADDR': '192.0.2.10', 'REMOTE_PORT': '52814', 'HTTP_HOST': 'example.com',
 'HTTP_USER_AGENT': 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0',
 'HTTP_ACCEPT': 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
 'HTTP_ACCEPT_ENCODING': 'gzip, deflate, br', 'HTTP_ACCEPT_LANGUAGE': 'fr-FR,fr;q=0.9,en;q=0.5',
 'HTTP_COOKIE': 'session=abc123; theme=dark', 'wsgi.version': (1, 0),
 'wsgi.url_scheme': 'http', 'wsgi.multithread': False, 'wsgi.multiprocess': True,
 'hornbeam.request_id': 1099511627776}`

func TestEncodeEnvironGo(t *testing.T) {
	var e Encoder
	encodeEnviron(&e, &sampleRequest)
	v, err := Unmarshal(e.Data())
	if err != nil {
		t.Fatal(err)
	}
	d := v.(Dict)
	if len(d) != 22 {
		t.Fatalf("%d keys", len(d))
	}
	if p, _ := d.Get("PATH_INFO"); p != "/café/menu" {
		t.Errorf("PATH_INFO = %q", p)
	}
	if p, _ := d.Get("wsgi.version"); !equal(p, Tuple{int64(1), int64(0)}) {
		t.Errorf("wsgi.version = %s", show(p))
	}
}

func BenchmarkEncodeEnviron(b *testing.B) {
	var e Encoder
	b.ReportAllocs()
	for b.Loop() {
		e.Reset()
		encodeEnviron(&e, &sampleRequest)
	}
	b.SetBytes(int64(len(e.Data())))
}

func TestEncodeEnvironAllocs(t *testing.T) {
	var e Encoder
	encodeEnviron(&e, &sampleRequest) // warm up the buffer
	allocs := testing.AllocsPerRun(100, func() {
		e.Reset()
		encodeEnviron(&e, &sampleRequest)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per environ, want 0", allocs)
	}
}

func BenchmarkUnmarshalEnviron(b *testing.B) {
	var e Encoder
	encodeEnviron(&e, &sampleRequest)
	data := e.Data()
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Unmarshal(data); err != nil {
			b.Fatal(err)
		}
	}
}

func TestAppendMarshalAllocs(t *testing.T) {
	v := Dict{{"a", List{int64(1), "x", 2.5, Tuple{nil, true}}}, {"b", []byte("zz")}, {"c", pow2(100)}}
	buf := make([]byte, 0, 1024)
	allocs := testing.AllocsPerRun(100, func() { buf, _ = AppendMarshal(buf[:0], v) })
	if allocs != 0 {
		t.Errorf("%v allocations, want 0", allocs)
	}
}
