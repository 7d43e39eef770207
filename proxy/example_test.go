package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/hornbeam-go/hornbeam/proxy"
)

// Trust.Handler behind a proxy on 10.0.0.0/8 that sets X-Forwarded-*.
func ExampleTrust_Handler() {
	trust, err := proxy.NewTrust([]string{"127.0.0.1", "::1", "10.0.0.0/8"})
	if err != nil {
		log.Fatal(err)
	}
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println(r.RemoteAddr, proxy.Scheme(r), r.Host)
	})
	h := trust.Handler(app)

	req := httptest.NewRequest("GET", "http://internal:8000/", nil)
	req.RemoteAddr = "10.1.2.3:40000" // the proxy: trusted
	req.Header.Set("X-Forwarded-For", "203.0.113.7, 10.1.2.3")
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("X-Forwarded-Host", "www.example.com")
	h.ServeHTTP(httptest.NewRecorder(), req)

	req = httptest.NewRequest("GET", "http://internal:8000/", nil)
	req.RemoteAddr = "10.1.2.3:40001"
	req.Header.Set("Forwarded", `for="[2001:db8::17]:4711";proto=https;host=api.example.com`)
	h.ServeHTTP(httptest.NewRecorder(), req)

	req = httptest.NewRequest("GET", "http://internal:8000/", nil)
	req.RemoteAddr = "198.51.100.9:5555" // not a trusted proxy: headers ignored
	req.Header.Set("X-Forwarded-For", "1.1.1.1")
	req.Header.Set("X-Forwarded-Proto", "https")
	h.ServeHTTP(httptest.NewRecorder(), req)
	// Output:
	// 203.0.113.7:0 https www.example.com
	// [2001:db8::17]:4711 https api.example.com
	// 198.51.100.9:5555 http internal:8000
}

// Listener accepts a PROXY protocol header from a trusted peer.
func ExampleListener() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	trust, _ := proxy.NewTrust(proxy.DefaultAllow)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, r.RemoteAddr)
		}),
		ConnContext: proxy.ConnContext,
	}
	go srv.Serve(proxy.Listener(ln, trust, 5*time.Second)) // TLS: tls.NewListener(proxy.Listener(...))
	defer srv.Close()

	// What HAProxy (send-proxy) or an AWS NLB sends first.
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "PROXY TCP4 192.0.2.10 192.0.2.1 51234 80\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(string(body))
	// Output:
	// 192.0.2.10:51234
}
