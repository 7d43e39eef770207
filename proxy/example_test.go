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

// Trust.Handler behind proxies on 10.0.0.0/8 that append to
// X-Forwarded-For / Forwarded: the client is the right-most address that
// is not a trusted proxy, whatever the client wrote to its left.
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
	req.RemoteAddr = "10.1.2.3:40000" // the proxy next to us: trusted
	// 6.6.6.6 is the client's own claim, 203.0.113.7 what the edge proxy
	// saw, 10.1.2.3 what the proxy next to us saw (the edge: trusted).
	req.Header.Set("X-Forwarded-For", "6.6.6.6, 203.0.113.7, 10.1.2.3")
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("X-Forwarded-Host", "www.example.com") // not read: ForwardedHost is off
	h.ServeHTTP(httptest.NewRecorder(), req)

	req = httptest.NewRequest("GET", "http://internal:8000/", nil)
	req.RemoteAddr = "10.1.2.3:40001"
	req.Header.Set("Forwarded", `for=6.6.6.6;proto=http, for="[2001:db8::17]:4711";proto=https`)
	h.ServeHTTP(httptest.NewRecorder(), req)

	req = httptest.NewRequest("GET", "http://internal:8000/", nil)
	req.RemoteAddr = "198.51.100.9:5555" // not a trusted proxy: headers ignored
	req.Header.Set("X-Forwarded-For", "1.1.1.1")
	req.Header.Set("X-Forwarded-Proto", "https")
	h.ServeHTTP(httptest.NewRecorder(), req)
	// Output:
	// 203.0.113.7:0 https internal:8000
	// [2001:db8::17]:4711 https internal:8000
	// 198.51.100.9:5555 http internal:8000
}

// With ForwardedHost (--forwarded-host) the host comes from the proxy's
// X-Forwarded-Host (its right-most value) or from the host= of the
// Forwarded element chosen for the client.
func ExampleTrust_Handler_forwardedHost() {
	trust, _ := proxy.NewTrust(proxy.DefaultAllow)
	trust.ForwardedHost = true
	h := trust.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println(r.RemoteAddr, proxy.Scheme(r), r.Host)
	}))

	req := httptest.NewRequest("GET", "http://internal:8000/", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	req.Header.Set("Forwarded", "for=6.6.6.6;host=evil.example, for=203.0.113.7;proto=https;host=api.example.com")
	h.ServeHTTP(httptest.NewRecorder(), req)
	// Output:
	// 203.0.113.7:0 https api.example.com
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
