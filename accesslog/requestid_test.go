package accesslog

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestRequestID(t *testing.T) {
	generated := regexp.MustCompile(`^[0-9a-f]{32}$`)
	long200 := strings.Repeat("a", 200)
	cases := []struct {
		name string
		in   []string // incoming X-Request-Id fields
		keep bool     // the incoming id is kept
	}{
		{name: "absent"},
		{name: "valid", in: []string{"abc-123_XYZ.=+/"}, keep: true},
		{name: "uuid", in: []string{"0f8fad5b-d9cb-469f-a165-70867728950e"}, keep: true},
		{name: "200 chars", in: []string{long200}, keep: true},
		{name: "201 chars", in: []string{long200 + "b"}},
		{name: "empty", in: []string{""}},
		{name: "space", in: []string{"a b"}},
		{name: "tab", in: []string{"a\tb"}},
		{name: "non-ASCII", in: []string{"caf\xc3\xa9"}},
		{name: "two fields", in: []string{"one", "two"}},
	}
	sink := newSink(t)
	l, _ := New(sink, "%({x-request-id}i)s", false)
	var seenByApp string
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seenByApp = strings.Join(r.Header.Values("X-Request-Id"), "|")
		io.WriteString(w, "ok")
	})
	ts := httptest.NewServer(RequestID(l.Handler(app)))
	defer ts.Close()
	ids := map[string]bool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", ts.URL, nil)
			for _, v := range c.in {
				req.Header.Add("X-Request-Id", v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := resp.Header.Values("X-Request-Id")
			if len(got) != 1 {
				t.Fatalf("response X-Request-Id fields %q, want one", got)
			}
			id := got[0]
			if c.keep {
				if id != c.in[0] {
					t.Fatalf("id %q, want the incoming %q", id, c.in[0])
				}
			} else {
				if !generated.MatchString(id) {
					t.Fatalf("id %q is not a generated one", id)
				}
				if ids[id] {
					t.Fatalf("id %q generated twice", id)
				}
				ids[id] = true
			}
			if seenByApp != id {
				t.Fatalf("app saw X-Request-Id %q, want %q", seenByApp, id)
			}
			if line := sink.next(t); line != id {
				t.Fatalf("logged %q, want %q", line, id)
			}
		})
	}
}

// TestRequestIDDoesNotModifyRequest: the incoming *http.Request is copied
// before its header changes.
func TestRequestIDDoesNotModifyRequest(t *testing.T) {
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("X-Request-Id", "bad id")
	var inner *http.Request
	RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { inner = r })).ServeHTTP(httptest.NewRecorder(), req)
	if req.Header.Get("X-Request-Id") != "bad id" {
		t.Fatalf("the caller's request was modified: %q", req.Header.Get("X-Request-Id"))
	}
	if inner == req || inner.Header.Get("X-Request-Id") == "bad id" {
		t.Fatal("the handler did not get a fixed copy")
	}
}
