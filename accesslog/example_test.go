package accesslog_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/hornbeam-go/hornbeam/accesslog"
)

// A Logger in a gunicorn format, behind RequestID so the id is logged.
func Example() {
	logger, err := accesslog.New(os.Stdout, `%(m)s %(U)s %(q)s %(s)s %(B)s %({x-request-id}i)s`, false)
	if err != nil {
		log.Fatal(err) // e.g. access log format: unknown atom %(x)s ...
	}
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello\n")
	})
	handler := accesslog.RequestID(logger.Handler(app))

	req := httptest.NewRequest("GET", "/hello?name=world", nil)
	req.Header.Set("X-Request-Id", "abc123")
	handler.ServeHTTP(httptest.NewRecorder(), req)
	// Output:
	// GET /hello name=world 200 6 abc123
}

func ExampleNew_unknownAtom() {
	_, err := accesslog.New(os.Stdout, `%(h)s %(x)s`, false)
	fmt.Println(err != nil)
	// Output:
	// true
}

func ExampleRequestID() {
	handler := accesslog.RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("app sees", r.Header.Get("X-Request-Id"))
	}))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("X-Request-Id", "from-the-proxy-1")
	handler.ServeHTTP(rec, req)
	fmt.Println("client gets", rec.Header().Get("X-Request-Id"))
	// Output:
	// app sees from-the-proxy-1
	// client gets from-the-proxy-1
}
