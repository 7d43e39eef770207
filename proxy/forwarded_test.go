package proxy

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// seen is what the app behind Trust.Handler saw.
type seen struct {
	RemoteAddr string
	Host       string
	Scheme     string
	Header     http.Header
}

func echoApp() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(seen{RemoteAddr: r.RemoteAddr, Host: r.Host, Scheme: Scheme(r), Header: r.Header})
	})
}

func get(t *testing.T, client *http.Client, url string, header http.Header) seen {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if h := header.Get("Host"); h != "" {
		req.Host = h
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s seen
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// handlerCase is one request through Trust.Handler on a real 127.0.0.1
// connection: the peer is 127.0.0.1.
type handlerCase struct {
	name    string
	allow   []string
	fwdHost bool // Trust.ForwardedHost (--forwarded-host)
	header  http.Header
	remote  string // want r.RemoteAddr; keep = unchanged
	host    string // want r.Host; "" = unchanged
	scheme  string
}

const keep = "<peer>" // the real peer, 127.0.0.1:port

func runHandlerCases(t *testing.T, cases []handlerCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr, err := NewTrust(c.allow)
			if err != nil {
				t.Fatal(err)
			}
			tr.ForwardedHost = c.fwdHost
			ts := httptest.NewServer(tr.Handler(echoApp()))
			defer ts.Close()
			s := get(t, ts.Client(), ts.URL, c.header)
			want := c.remote
			if want == keep {
				if !strings.HasPrefix(s.RemoteAddr, "127.0.0.1:") || s.RemoteAddr == "127.0.0.1:0" {
					t.Errorf("RemoteAddr = %q, want the real peer", s.RemoteAddr)
				}
			} else if s.RemoteAddr != want {
				t.Errorf("RemoteAddr = %q, want %q", s.RemoteAddr, want)
			}
			wantHost := c.host
			if wantHost == "" {
				wantHost = strings.TrimPrefix(ts.URL, "http://")
			}
			if s.Host != wantHost {
				t.Errorf("Host = %q, want %q", s.Host, wantHost)
			}
			if s.Scheme != c.scheme {
				t.Errorf("Scheme = %q, want %q", s.Scheme, c.scheme)
			}
			// the headers reach the app untouched, trusted or not
			for k, vs := range c.header {
				if got := s.Header[k]; strings.Join(got, "\n") != strings.Join(vs, "\n") {
					t.Errorf("app got %s %q, want %q", k, got, vs)
				}
			}
		})
	}
}

// TestHandler: what each header gives from a trusted peer, and that an
// untrusted peer changes nothing.
func TestHandler(t *testing.T) {
	runHandlerCases(t, []handlerCase{
		{name: "no headers", allow: DefaultAllow, remote: keep, scheme: "http"},
		{name: "X-Forwarded-For", allow: DefaultAllow,
			header: http.Header{"X-Forwarded-For": {"203.0.113.7"}}, remote: "203.0.113.7:0", scheme: "http"},
		{name: "X-Forwarded-For IPv6", allow: DefaultAllow,
			header: http.Header{"X-Forwarded-For": {"2001:db8::1"}}, remote: "[2001:db8::1]:0", scheme: "http"},
		{name: "X-Forwarded-For with a port", allow: DefaultAllow,
			header: http.Header{"X-Forwarded-For": {"[2001:db8::1]:443"}}, remote: "[2001:db8::1]:0", scheme: "http"},
		{name: "X-Forwarded-For garbage only", allow: DefaultAllow,
			header: http.Header{"X-Forwarded-For": {"not-an-ip"}}, remote: keep, scheme: "http"},
		{name: "X-Forwarded-Proto https", allow: DefaultAllow,
			header: http.Header{"X-Forwarded-Proto": {"https"}}, remote: keep, scheme: "https"},
		{name: "X-Forwarded-Proto upper case", allow: DefaultAllow,
			header: http.Header{"X-Forwarded-Proto": {"HTTPS"}}, remote: keep, scheme: "https"},
		{name: "X-Forwarded-Proto other scheme", allow: DefaultAllow,
			header: http.Header{"X-Forwarded-Proto": {"ftp"}}, remote: keep, scheme: "http"},
		{name: "X-Forwarded-Host with --forwarded-host", allow: DefaultAllow, fwdHost: true,
			header: http.Header{"X-Forwarded-Host": {"app.example:8443"}}, remote: keep, host: "app.example:8443", scheme: "http"},
		{name: "X-Forwarded-Host invalid", allow: DefaultAllow, fwdHost: true,
			header: http.Header{"X-Forwarded-Host": {"evil.example/path"}}, remote: keep, scheme: "http"},
		{name: "all three with --forwarded-host", allow: DefaultAllow, fwdHost: true,
			header: http.Header{"X-Forwarded-For": {"198.51.100.9"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"shop.example"}},
			remote: "198.51.100.9:0", host: "shop.example", scheme: "https"},
		{name: "Forwarded with --forwarded-host", allow: DefaultAllow, fwdHost: true,
			header: http.Header{"Forwarded": {"for=192.0.2.60;proto=https;host=app.example;by=203.0.113.43"}},
			remote: "192.0.2.60:0", host: "app.example", scheme: "https"},
		{name: "Forwarded quoted IPv6 with port", allow: DefaultAllow,
			header: http.Header{"Forwarded": {`For="[2001:db8:cafe::17]:4711";Proto=HTTPS`}},
			remote: "[2001:db8:cafe::17]:4711", scheme: "https"},
		{name: "Forwarded IPv4 with port", allow: DefaultAllow,
			header: http.Header{"Forwarded": {`for="192.0.2.60:8080"`}}, remote: "192.0.2.60:8080", scheme: "http"},
		{name: "Forwarded for=unknown keeps the peer", allow: DefaultAllow,
			header: http.Header{"Forwarded": {"for=unknown;proto=https"}}, remote: keep, scheme: "https"},
		{name: "Forwarded obfuscated node", allow: DefaultAllow, fwdHost: true,
			header: http.Header{"Forwarded": {"for=_hidden;host=h.example"}}, remote: keep, host: "h.example", scheme: "http"},
		{name: "Forwarded repeated parameter is malformed", allow: DefaultAllow,
			header: http.Header{"Forwarded": {"for=1.1.1.1;for=2.2.2.2"}}, remote: keep, scheme: "http"},
		{name: "Forwarded bad values are ignored", allow: DefaultAllow,
			header: http.Header{"Forwarded": {`for="[2001:db8::1";proto=gopher;host="a b"`}}, remote: keep, scheme: "http"},
		{name: "Forwarded port out of range", allow: DefaultAllow,
			header: http.Header{"Forwarded": {`for="1.2.3.4:70000"`}}, remote: keep, scheme: "http"},
		{name: "Forwarded malformed with X-Forwarded-For", allow: DefaultAllow,
			header: http.Header{"Forwarded": {"for"}, "X-Forwarded-For": {"203.0.113.5"}}, remote: "203.0.113.5:0", scheme: "http"},
		{name: "untrusted peer: nothing changes", allow: []string{"10.0.0.0/8"}, fwdHost: true,
			header: http.Header{"X-Forwarded-For": {"203.0.113.7"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"evil.example"}},
			remote: keep, scheme: "http"},
		{name: "untrusted peer: Forwarded ignored", allow: []string{"::1"}, fwdHost: true,
			header: http.Header{"Forwarded": {"for=192.0.2.60;proto=https;host=evil.example"}}, remote: keep, scheme: "http"},
		{name: "wildcard trusts everyone", allow: []string{"*"},
			header: http.Header{"X-Forwarded-For": {"203.0.113.7"}}, remote: "203.0.113.7:0", scheme: "http"},
		{name: "CIDR", allow: []string{"127.0.0.0/8"},
			header: http.Header{"X-Forwarded-For": {"203.0.113.8"}}, remote: "203.0.113.8:0", scheme: "http"},
	})
}

// TestHandlerSpoofing: a client behind trusted proxies that append to
// X-Forwarded-For / Forwarded (nginx's $proxy_add_x_forwarded_for) cannot
// choose its address, scheme or host. The peer, 127.0.0.1, is the proxy
// next to hornbeam; 6.6.6.6 and evil.com are what the client wrote.
// Every case here was accepted (or read differently) by the left-most
// rule this replaced.
func TestHandlerSpoofing(t *testing.T) {
	twoHops := []string{"127.0.0.1", "10.0.0.2"}
	v6Hops := []string{"127.0.0.1", "::1", "fd00::/8"}
	runHandlerCases(t, []handlerCase{
		// one trusted hop: the peer
		{name: "X-Forwarded-For: the right-most entry", allow: DefaultAllow,
			header: http.Header{"X-Forwarded-For": {"1.2.3.4, 5.6.7.8"}}, remote: "5.6.7.8:0", scheme: "http"},
		{name: "X-Forwarded-For over several lines", allow: DefaultAllow,
			header: http.Header{"X-Forwarded-For": {"6.6.6.6, 10.0.0.1", "203.0.113.7"}}, remote: "203.0.113.7:0", scheme: "http"},
		{name: "X-Forwarded-For: garbage left of the client is not read", allow: DefaultAllow,
			header: http.Header{"X-Forwarded-For": {"not-an-ip, 1.2.3.4"}}, remote: "1.2.3.4:0", scheme: "http"},
		{name: "X-Forwarded-For: garbage the proxy wrote stops the walk", allow: DefaultAllow,
			header: http.Header{"X-Forwarded-For": {"1.2.3.4, unknown"}}, remote: keep, scheme: "http"},
		{name: "X-Forwarded-Proto: the right-most value", allow: DefaultAllow,
			header: http.Header{"X-Forwarded-Proto": {"https, http"}}, remote: keep, scheme: "http"},
		{name: "X-Forwarded-Proto over several lines", allow: DefaultAllow,
			header: http.Header{"X-Forwarded-Proto": {"https", "http"}}, remote: keep, scheme: "http"},
		{name: "X-Forwarded-Host is not read without --forwarded-host", allow: DefaultAllow,
			header: http.Header{"X-Forwarded-For": {"203.0.113.7"}, "X-Forwarded-Host": {"evil.com"}}, remote: "203.0.113.7:0", scheme: "http"},
		{name: "X-Forwarded-Host with --forwarded-host: the right-most value", allow: DefaultAllow, fwdHost: true,
			header: http.Header{"X-Forwarded-Host": {"evil.com, app.example"}}, remote: keep, host: "app.example", scheme: "http"},
		{name: "Forwarded next to X-Forwarded-For is ignored", allow: DefaultAllow, fwdHost: true,
			header: http.Header{"Forwarded": {"for=6.6.6.6;host=evil.com;proto=https"}, "X-Forwarded-For": {"203.0.113.7"}, "X-Forwarded-Proto": {"http"}},
			remote: "203.0.113.7:0", scheme: "http"},
		{name: "Forwarded next to X-Forwarded-Proto alone is ignored", allow: DefaultAllow,
			header: http.Header{"Forwarded": {"for=6.6.6.6;proto=http"}, "X-Forwarded-Proto": {"https"}}, remote: keep, scheme: "https"},
		{name: "Forwarded host= is not read without --forwarded-host", allow: DefaultAllow,
			header: http.Header{"Forwarded": {"for=6.6.6.6;host=evil.com;proto=https"}}, remote: "6.6.6.6:0", scheme: "https"},
		{name: "Forwarded: the right-most element", allow: DefaultAllow, fwdHost: true,
			header: http.Header{"Forwarded": {"for=6.6.6.6;host=evil.com;proto=https, for=203.0.113.7;proto=http;host=app.example"}},
			remote: "203.0.113.7:0", host: "app.example", scheme: "http"},
		{name: "Forwarded: the chosen element's proto, absent", allow: DefaultAllow,
			header: http.Header{"Forwarded": {`for="6.6.6.6:1";proto=https, for="203.0.113.7:4242"`}}, remote: "203.0.113.7:4242", scheme: "http"},
		{name: "Forwarded: elements over several lines", allow: DefaultAllow,
			header: http.Header{"Forwarded": {"for=6.6.6.6;proto=https", "for=203.0.113.7;proto=http"}}, remote: "203.0.113.7:0", scheme: "http"},
		{name: "Forwarded: a malformed element left of the proxy's", allow: DefaultAllow,
			header: http.Header{"Forwarded": {"for=6.6.6.6 junk, for=203.0.113.7;proto=https"}}, remote: "203.0.113.7:0", scheme: "https"},
		{name: "Forwarded: an unterminated quote does not reach the proxy's line", allow: DefaultAllow,
			header: http.Header{"Forwarded": {`for="6.6.6.6`, "for=203.0.113.7"}}, remote: "203.0.113.7:0", scheme: "http"},
		{name: "Forwarded: the proxy's for=unknown", allow: DefaultAllow,
			header: http.Header{"Forwarded": {"for=6.6.6.6;proto=http, for=unknown;proto=https"}}, remote: keep, scheme: "https"},

		// two trusted hops: 10.0.0.2 -> 127.0.0.1 -> hornbeam
		{name: "two hops: X-Forwarded-For", allow: twoHops,
			header: http.Header{"X-Forwarded-For": {"6.6.6.6, 1.2.3.4, 10.0.0.2"}}, remote: "1.2.3.4:0", scheme: "http"},
		{name: "two hops, the second untrusted: it is the client", allow: DefaultAllow,
			header: http.Header{"X-Forwarded-For": {"6.6.6.6, 1.2.3.4, 10.0.0.2"}}, remote: "10.0.0.2:0", scheme: "http"},
		{name: "two hops: an IPv4-mapped trusted hop", allow: twoHops,
			header: http.Header{"X-Forwarded-For": {"6.6.6.6, 1.2.3.4, ::ffff:10.0.0.2"}}, remote: "1.2.3.4:0", scheme: "http"},
		{name: "two hops: garbage stops at the last trusted hop", allow: twoHops,
			header: http.Header{"X-Forwarded-For": {"6.6.6.6, unknown, 10.0.0.2"}}, remote: "10.0.0.2:0", scheme: "http"},
		{name: "two hops: all trusted, the left-most (a Forwarded beside it ignored)", allow: []string{"127.0.0.1", "10.0.0.0/8"},
			header: http.Header{"X-Forwarded-For": {"10.0.0.5, 10.0.0.2"}, "Forwarded": {"for=6.6.6.6"}}, remote: "10.0.0.5:0", scheme: "http"},
		{name: "two hops: Forwarded elements", allow: twoHops, fwdHost: true,
			header: http.Header{"Forwarded": {"for=6.6.6.6;proto=http;host=evil.com, for=1.2.3.4;proto=https;host=app.example, for=10.0.0.2;proto=http;host=internal"}},
			remote: "1.2.3.4:0", host: "app.example", scheme: "https"},
		{name: "two hops: Forwarded elements without --forwarded-host", allow: twoHops,
			header: http.Header{"Forwarded": {"for=6.6.6.6;proto=http;host=evil.com, for=1.2.3.4;proto=https;host=app.example, for=10.0.0.2;proto=http;host=internal"}},
			remote: "1.2.3.4:0", scheme: "https"},

		// IPv6, mixed with IPv4
		{name: "IPv6: X-Forwarded-For", allow: v6Hops,
			header: http.Header{"X-Forwarded-For": {"2001:db8::6, 2001:db8::1, fd00::2"}}, remote: "[2001:db8::1]:0", scheme: "http"},
		{name: "IPv6: X-Forwarded-For mixed with IPv4 and ports", allow: v6Hops,
			header: http.Header{"X-Forwarded-For": {"6.6.6.6, 192.0.2.43, [fd00::2]:443"}}, remote: "192.0.2.43:0", scheme: "http"},
		{name: "IPv6: Forwarded", allow: v6Hops, fwdHost: true,
			header: http.Header{"Forwarded": {`for="[2001:db8::6]:1";host=evil.com, for="[2001:db8:cafe::17]:4711";proto=https;host="[2001:db8::80]:8443", for="[fd00::2]:80"`}},
			remote: "[2001:db8:cafe::17]:4711", host: "[2001:db8::80]:8443", scheme: "https"},
		{name: "IPv6: Forwarded mixed with IPv4", allow: v6Hops,
			header: http.Header{"Forwarded": {`for=6.6.6.6;proto=http, for=192.0.2.43;proto=https, for="[fd00::2]"`}}, remote: "192.0.2.43:0", scheme: "https"},

		// "*": every address is trusted, the left-most is the client (its
		// own claim); the scheme is still the right-most proxy's and the
		// host still needs --forwarded-host.
		{name: "*: X-Forwarded-For left-most, X-Forwarded-Proto right-most", allow: []string{"*"},
			header: http.Header{"X-Forwarded-For": {"6.6.6.6, 1.2.3.4"}, "X-Forwarded-Proto": {"https, http"}, "X-Forwarded-Host": {"evil.com"}},
			remote: "6.6.6.6:0", scheme: "http"},
		{name: "*: Forwarded left-most element, host not read", allow: []string{"*"},
			header: http.Header{"Forwarded": {"for=6.6.6.6;proto=https;host=evil.com, for=1.2.3.4;proto=http"}}, remote: "6.6.6.6:0", scheme: "https"},
	})
}

func TestHandlerTLS(t *testing.T) {
	cases := []struct {
		name   string
		allow  []string
		header http.Header
		scheme string
	}{
		{name: "TLS", allow: DefaultAllow, scheme: "https"},
		{name: "TLS, trusted proxy says http", allow: DefaultAllow, header: http.Header{"X-Forwarded-Proto": {"http"}}, scheme: "http"},
		{name: "TLS, untrusted proxy says http", allow: []string{"10.0.0.1"}, header: http.Header{"X-Forwarded-Proto": {"http"}}, scheme: "https"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr, _ := NewTrust(c.allow)
			ts := httptest.NewTLSServer(tr.Handler(echoApp()))
			defer ts.Close()
			if s := get(t, ts.Client(), ts.URL, c.header); s.Scheme != c.scheme {
				t.Fatalf("Scheme = %q, want %q", s.Scheme, c.scheme)
			}
		})
	}
}

// TestHandlerUnixSocket: a unix-socket peer is trusted even by an empty
// list; the same request over TCP is not.
func TestHandlerUnixSocket(t *testing.T) {
	tr, _ := NewTrust(nil)
	path := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: tr.Handler(echoApp())}
	go srv.Serve(ln)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", path)
	}}}
	h := http.Header{"X-Forwarded-For": {"203.0.113.7"}, "X-Forwarded-Proto": {"https"}}
	s := get(t, client, "http://unix/", h)
	if s.RemoteAddr != "203.0.113.7:0" || s.Scheme != "https" {
		t.Fatalf("over a unix socket: RemoteAddr %q scheme %q, want 203.0.113.7:0 https", s.RemoteAddr, s.Scheme)
	}

	ts := httptest.NewServer(tr.Handler(echoApp()))
	defer ts.Close()
	if s := get(t, ts.Client(), ts.URL, h); s.RemoteAddr == "203.0.113.7:0" || s.Scheme != "http" {
		t.Fatalf("over TCP with an empty list: RemoteAddr %q scheme %q, want unchanged", s.RemoteAddr, s.Scheme)
	}
}

// TestHandlerIPv6Peer: a ::1 peer is trusted by the default list.
func TestHandlerIPv6Peer(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback:", err)
	}
	tr, _ := NewTrust(DefaultAllow)
	srv := &http.Server{Handler: tr.Handler(echoApp())}
	go srv.Serve(ln)
	defer srv.Close()
	s := get(t, http.DefaultClient, "http://"+ln.Addr().String()+"/", http.Header{"Forwarded": {`for="[2001:db8::5]:1234";proto=https`}})
	if s.RemoteAddr != "[2001:db8::5]:1234" || s.Scheme != "https" {
		t.Fatalf("RemoteAddr %q scheme %q", s.RemoteAddr, s.Scheme)
	}
}

// TestHandlerDoesNotModifyRequest: the caller's *http.Request is copied.
func TestHandlerDoesNotModifyRequest(t *testing.T) {
	tr, _ := NewTrust([]string{"*"})
	tr.ForwardedHost = true
	req := httptest.NewRequest("GET", "http://orig.example/", nil)
	req.RemoteAddr = "192.0.2.1:1234"
	req.Header.Set("X-Forwarded-For", "203.0.113.1")
	req.Header.Set("X-Forwarded-Host", "fwd.example")
	var inner *http.Request
	tr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { inner = r })).ServeHTTP(httptest.NewRecorder(), req)
	if req.RemoteAddr != "192.0.2.1:1234" || req.Host != "orig.example" {
		t.Fatalf("caller's request modified: %q %q", req.RemoteAddr, req.Host)
	}
	if inner.RemoteAddr != "203.0.113.1:0" || inner.Host != "fwd.example" {
		t.Fatalf("inner request: %q %q", inner.RemoteAddr, inner.Host)
	}
}

// TestHandlerWithProxyProtocol: through Listener and ConnContext the trust
// check is on the socket peer (the balancer, 127.0.0.1); the headers are
// walked from the right as without PROXY protocol.
func TestHandlerWithProxyProtocol(t *testing.T) {
	cases := []struct {
		name   string
		allow  []string
		header string
		want   string
	}{
		{name: "X-Forwarded-For: the right-most entry", allow: DefaultAllow,
			header: "X-Forwarded-For: 6.6.6.6, 198.51.100.1\r\n", want: "198.51.100.1:0 http"},
		{name: "X-Forwarded-For: two trusted hops", allow: []string{"127.0.0.1", "10.0.0.2"},
			header: "X-Forwarded-For: 6.6.6.6, 198.51.100.1, 10.0.0.2\r\n", want: "198.51.100.1:0 http"},
		{name: "Forwarded: the right-most element", allow: DefaultAllow,
			header: "Forwarded: for=6.6.6.6;proto=https, for=198.51.100.1;proto=http\r\n", want: "198.51.100.1:0 http"},
		{name: "X-Forwarded-Proto: the right-most value", allow: DefaultAllow,
			header: "X-Forwarded-Proto: https, http\r\n", want: "1.2.3.4:1111 http"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ps := startProxyServer(t, "tcp", "127.0.0.1:0", c.allow, time.Second, true)
			bodies, status, err := exchange(t, "tcp", ps.addr, []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1111 80\r\n"), 1, c.header)
			if err != nil || status != 200 || bodies[0] != c.want {
				t.Fatalf("%d %q %v, want %q", status, bodies, err, c.want)
			}
		})
	}
}

// FuzzForwarded: no header value makes the parsing panic, and what it
// accepts is well-formed.
func FuzzForwarded(f *testing.F) {
	for _, s := range []string{`for=1.2.3.4`, `for="[::1]:80";proto=https;host=a`, `for="\`, `;;,,==`, `for=[`, "for=\x00"} {
		f.Add(s, "1.2.3.4, 5.6.7.8", "example.com")
	}
	f.Fuzz(func(t *testing.T, fwd, xff, xfh string) {
		tr, _ := NewTrust([]string{"1.0.0.0/8", "::/1"})
		for _, h := range []http.Header{
			{"X-Forwarded-For": {xff, fwd}, "X-Forwarded-Host": {xfh}, "X-Forwarded-Proto": {fwd}},
			{"Forwarded": {fwd, xff, xfh}},
		} {
			fw := tr.forwardedFrom(h)
			if fw.remote != "" {
				if _, _, err := net.SplitHostPort(fw.remote); err != nil {
					t.Fatalf("remote %q: %v", fw.remote, err)
				}
			}
			if fw.scheme != "" && fw.scheme != "http" && fw.scheme != "https" {
				t.Fatalf("scheme %q", fw.scheme)
			}
			if strings.ContainsAny(fw.host, " \t\r\n/@?#,") {
				t.Fatalf("host %q", fw.host)
			}
		}
	})
}
