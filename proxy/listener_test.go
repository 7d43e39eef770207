package proxy

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// proxyServer serves, on a real 127.0.0.1 listener wrapped by Listener, a
// handler that answers r.RemoteAddr and Scheme(r).
type proxyServer struct {
	addr  string
	calls atomic.Int32
}

func startProxyServer(t *testing.T, network, addr string, allow []string, timeout time.Duration, connContext bool) *proxyServer {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTrust(allow)
	if err != nil {
		t.Fatal(err)
	}
	ps := &proxyServer{addr: ln.Addr().String()}
	srv := &http.Server{
		Handler: tr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ps.calls.Add(1)
			io.WriteString(w, r.RemoteAddr+" "+Scheme(r))
		})),
		ReadHeaderTimeout: 5 * time.Second,
		Protocols:         new(http.Protocols),
	}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true) // as hornbeam's server
	if connContext {
		srv.ConnContext = ConnContext
	}
	go srv.Serve(Listener(ln, tr, timeout))
	t.Cleanup(func() { srv.Close() })
	return ps
}

func v2Header(t *testing.T, cmd proxyproto.ProtocolVersionAndCommand, src, dst *net.TCPAddr) []byte {
	t.Helper()
	h := proxyproto.HeaderProxyFromAddrs(2, src, dst)
	h.Command = cmd
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func tcp(s string) *net.TCPAddr {
	a, err := net.ResolveTCPAddr("tcp", s)
	if err != nil {
		panic(err)
	}
	return a
}

// exchange dials, writes preface and then n requests on one connection,
// and returns the bodies (or the error that ended the exchange).
func exchange(t *testing.T, network, addr string, preface []byte, n int, extraHeader string) ([]string, int, error) {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(preface); err != nil {
		return nil, 0, err
	}
	br := bufio.NewReader(c)
	var bodies []string
	status := 0
	for i := 0; i < n; i++ {
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n"+extraHeader+"\r\n"); err != nil {
			return bodies, status, err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return bodies, status, err
		}
		status = resp.StatusCode
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return bodies, status, nil
		}
		bodies = append(bodies, string(b))
	}
	return bodies, status, nil
}

func TestListener(t *testing.T) {
	local := "127.0.0.1:"
	cases := []struct {
		name    string
		allow   []string
		preface []byte
		want    string // body of every response; "" with status 400 = refused
		status  int
	}{
		{name: "v1 TCP4", allow: DefaultAllow, preface: []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1111 80\r\n"), want: "1.2.3.4:1111 http", status: 200},
		{name: "v1 TCP6", allow: DefaultAllow, preface: []byte("PROXY TCP6 2001:db8::1 2001:db8::2 1111 443\r\n"), want: "[2001:db8::1]:1111 http", status: 200},
		{name: "v1 UNKNOWN keeps the peer", allow: DefaultAllow, preface: []byte("PROXY UNKNOWN\r\n"), want: local, status: 200},
		{name: "v2 TCP4", allow: DefaultAllow, preface: v2Header(t, proxyproto.PROXY, tcp("5.6.7.8:2222"), tcp("10.0.0.1:80")), want: "5.6.7.8:2222 http", status: 200},
		{name: "v2 TCP6", allow: DefaultAllow, preface: v2Header(t, proxyproto.PROXY, tcp("[2001:db8::9]:3333"), tcp("[2001:db8::a]:80")), want: "[2001:db8::9]:3333 http", status: 200},
		{name: "v2 LOCAL (health check) keeps the peer", allow: DefaultAllow, preface: v2Header(t, proxyproto.LOCAL, tcp("5.6.7.8:2222"), tcp("10.0.0.1:80")), want: local, status: 200},
		{name: "trusted, no header", allow: DefaultAllow, preface: nil, want: local, status: 200},
		{name: "trusted by CIDR", allow: []string{"127.0.0.0/8"}, preface: []byte("PROXY TCP4 9.9.9.9 5.6.7.8 9 80\r\n"), want: "9.9.9.9:9 http", status: 200},
		{name: "untrusted v1 is refused", allow: []string{"10.0.0.0/8"}, preface: []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1111 80\r\n"), status: 400},
		{name: "untrusted v2 is refused", allow: []string{"::1"}, preface: v2Header(t, proxyproto.PROXY, tcp("5.6.7.8:2222"), tcp("10.0.0.1:80")), status: 400},
		{name: "untrusted, no header", allow: []string{"10.0.0.0/8"}, preface: nil, want: local, status: 200},
		{name: "malformed v1 from a trusted peer", allow: DefaultAllow, preface: []byte("PROXY TCP4 1.2.3.4 garbage\r\n"), status: 400},
		{name: "malformed v2 from a trusted peer", allow: DefaultAllow, preface: append([]byte("\r\n\r\n\x00\r\nQUIT\n"), 0x21, 0x11, 0xff, 0xff), status: 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ps := startProxyServer(t, "tcp", "127.0.0.1:0", c.allow, time.Second, false)
			n := 1
			if c.status == 200 {
				n = 2 // keep-alive: the address holds for the whole connection
			}
			bodies, status, err := exchange(t, "tcp", ps.addr, c.preface, n, "")
			if c.status == 400 {
				// net/http answers 400 to the failed first read (or the
				// connection is just closed); the app is never called.
				if err == nil && status != 400 {
					t.Fatalf("status %d, bodies %q: want the connection refused", status, bodies)
				}
				if ps.calls.Load() != 0 {
					t.Fatalf("the app was called %d times for a refused connection", ps.calls.Load())
				}
				return
			}
			if err != nil || status != 200 || len(bodies) != n {
				t.Fatalf("status %d, bodies %q, err %v", status, bodies, err)
			}
			for _, b := range bodies {
				if c.want == local {
					if !strings.HasPrefix(b, local) || strings.HasPrefix(b, "127.0.0.1:0 ") {
						t.Fatalf("body %q, want the real peer", b)
					}
				} else if b != c.want {
					t.Fatalf("body %q, want %q", b, c.want)
				}
			}
		})
	}
}

// TestListenerHeaderTimeout: a trusted peer that sends nothing within the
// timeout is taken to have no PROXY header, and is served.
func TestListenerHeaderTimeout(t *testing.T) {
	ps := startProxyServer(t, "tcp", "127.0.0.1:0", DefaultAllow, 100*time.Millisecond, false)
	c, err := net.Dial("tcp", ps.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	time.Sleep(300 * time.Millisecond)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(string(b), "127.0.0.1:") {
		t.Fatalf("%d %q", resp.StatusCode, b)
	}
}

// TestListenerDoesNotBlockAccept: a peer that connects and stays silent
// does not hold up other connections.
func TestListenerDoesNotBlockAccept(t *testing.T) {
	ps := startProxyServer(t, "tcp", "127.0.0.1:0", DefaultAllow, 5*time.Second, false)
	silent, err := net.Dial("tcp", ps.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	start := time.Now()
	bodies, _, err := exchange(t, "tcp", ps.addr, []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1111 80\r\n"), 1, "")
	if err != nil || len(bodies) != 1 || bodies[0] != "1.2.3.4:1111 http" {
		t.Fatalf("%q %v", bodies, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v: Accept waited for the silent peer", d)
	}
}

// TestListenerUnixSocket: a unix-socket peer is trusted (even by an empty
// list) and may send a PROXY header.
func TestListenerUnixSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.sock")
	ps := startProxyServer(t, "unix", path, nil, time.Second, false)
	bodies, status, err := exchange(t, "unix", ps.addr, []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1111 80\r\n"), 1, "")
	if err != nil || status != 200 || bodies[0] != "1.2.3.4:1111 http" {
		t.Fatalf("%d %q %v", status, bodies, err)
	}
}

// TestListenerWithForwarded: with ConnContext, Trust.Handler checks the
// socket peer (the proxy), so a trusted proxy's X-Forwarded-Proto counts
// even though the PROXY header made r.RemoteAddr the (untrusted) client.
func TestListenerWithForwarded(t *testing.T) {
	cases := []struct {
		name        string
		connContext bool
		header      string
		want        string
	}{
		{name: "ConnContext: the proxy is checked", connContext: true, header: "X-Forwarded-Proto: https\r\n", want: "1.2.3.4:1111 https"},
		{name: "ConnContext: XFF from the trusted proxy", connContext: true, header: "X-Forwarded-For: 198.51.100.1\r\n", want: "198.51.100.1:0 http"},
		{name: "no ConnContext: the client address is checked", connContext: false, header: "X-Forwarded-Proto: https\r\n", want: "1.2.3.4:1111 http"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ps := startProxyServer(t, "tcp", "127.0.0.1:0", DefaultAllow, time.Second, c.connContext)
			bodies, status, err := exchange(t, "tcp", ps.addr, []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1111 80\r\n"), 1, c.header)
			if err != nil || status != 200 || bodies[0] != c.want {
				t.Fatalf("%d %q %v, want %q", status, bodies, err, c.want)
			}
		})
	}
}

// TestListenerTLS: the PROXY header comes before the TLS handshake; with
// tls.NewListener outside Listener, the client address and https both
// reach the app, and ConnContext sees through the *tls.Conn.
func TestListenerTLS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr, _ := NewTrust(DefaultAllow)
	ts := httptest.NewUnstartedServer(tr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.RemoteAddr+" "+Scheme(r))
	})))
	ts.Listener.Close()
	ts.Listener = Listener(ln, tr, time.Second)
	ts.Config.ConnContext = ConnContext
	ts.StartTLS()
	defer ts.Close()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "PROXY TCP4 1.2.3.4 5.6.7.8 1111 443\r\n")
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
	io.WriteString(tc, "GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: http\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	// the trusted proxy (checked through ConnContext) says http
	if string(b) != "1.2.3.4:1111 http" {
		t.Fatalf("%q", b)
	}
}

// The wrapped connection must keep ReadFrom, which net/http uses for
// sendfile.
var _ io.ReaderFrom = (*proxyproto.Conn)(nil)

// TestListenerRequestsStartingWithP: without a PROXY header, requests whose
// first byte is the PROXY signature's ('P': POST, PUT, PATCH, and h2c's
// "PRI *" preface) are served normally, trusted peer or not.
func TestListenerRequestsStartingWithP(t *testing.T) {
	for _, allow := range [][]string{DefaultAllow, {"10.0.0.0/8"}} {
		ps := startProxyServer(t, "tcp", "127.0.0.1:0", allow, time.Second, false)
		for _, method := range []string{"POST", "PUT", "PATCH"} {
			req, _ := http.NewRequest(method, "http://"+ps.addr+"/", strings.NewReader("x"))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%v %s: %v", allow, method, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.HasPrefix(string(b), "127.0.0.1:") {
				t.Fatalf("%v %s: %d %q", allow, method, resp.StatusCode, b)
			}
		}
		// h2c with prior knowledge
		var protos http.Protocols
		protos.SetUnencryptedHTTP2(true)
		client := &http.Client{Transport: &http.Transport{Protocols: &protos}}
		resp, err := client.Get("http://" + ps.addr + "/")
		if err != nil {
			t.Fatalf("%v h2c: %v", allow, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || !strings.HasPrefix(string(b), "127.0.0.1:") {
			t.Fatalf("%v h2c: %s %q", allow, resp.Proto, b)
		}
	}
}
