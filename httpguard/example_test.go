package httpguard_test

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"

	"github.com/hornbeam-go/hornbeam/httpguard"
)

// A server whose handler applies the guard's verdicts first. An HTTP/1.0
// request with Transfer-Encoding, which net/http would frame by its
// Content-Length and pass on, is refused.
func Example() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch v := httpguard.Check(r); {
		case v.Reject != "":
			w.Header().Set("Connection", "close")
			http.Error(w, "Bad Request: "+v.Reject, http.StatusBadRequest)
			return
		case v.Close:
			w.Header().Set("Connection", "close")
		}
		fmt.Fprintln(w, "served", r.URL.Path)
	})
	srv := &http.Server{Handler: handler, ConnContext: httpguard.ConnContext}
	go srv.Serve(httpguard.Listener(ln))
	defer srv.Close()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /first HTTP/1.1\r\nHost: x\r\n\r\n"+
		"POST /second HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"1c\r\nGET /smuggled HTTP/1.0\r\n\r\n")
	out, _ := io.ReadAll(c) // until the server closes the connection
	for _, line := range strings.Split(string(out), "\r\n") {
		if strings.HasPrefix(line, "HTTP/") || strings.HasPrefix(line, "served") || strings.HasPrefix(line, "Bad Request") {
			fmt.Println(line)
		}
	}
	// Output:
	// HTTP/1.1 200 OK
	// served /first
	// HTTP/1.0 400 Bad Request
	// Bad Request: Transfer-Encoding in an HTTP/1.0 request (RFC 9112 section 6.1: faulty framing)
}
