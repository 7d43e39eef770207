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

func TestHandler(t *testing.T) {
	const keep = "<peer>" // the real peer, 127.0.0.1:port
	cases := []struct {
		name   string
		allow  []string
		header http.Header
		remote string // want r.RemoteAddr; keep = unchanged
		host   string // want r.Host; "" = unchanged
		scheme string
	}{
		{name: "no headers", allow: DefaultAllow, remote: keep, scheme: "http"},
		{name: "X-Forwarded-For", allow: DefaultAllow,
			header: http.Header{"X-Forwarded-For": {"203.0.113.7"}}, remote: "203.0.113.7:0", scheme: "http"},
		{name: "X-Forwarded-For left-most of a list", allow: DefaultAllow,
			header: http.Header{"X-Forwarded-For": {"203.0.113.7, 10.0.0.1", "10.0.0.2"}}, remote: "203.0.113.7:0", scheme: "http"},
		{name: "X-Forwarded-For IPv6", allow: DefaultAllow,
			header: http.Header{"X-Forwarded-For": {"2001:db8::1"}}, remote: "[2001:db8::1]:0", scheme: "http"},
		{name: "X-Forwarded-For with a port", allow: DefaultAllow,
			header: http.Header{"X-Forwarded-For": {"[2001:db8::1]:443"}}, remote: "[2001:db8::1]:0", scheme: "http"},
		{name: "X-Forwarded-For garbage", allow: DefaultAllow,
			header: http.Header{"X-Forwarded-For": {"not-an-ip, 1.2.3.4"}}, remote: keep, scheme: "http"},
		{name: "X-Forwarded-Proto https", allow: DefaultAllow,
			header: http.Header{"X-Forwarded-Proto": {"https"}}, remote: keep, scheme: "https"},
		{name: "X-Forwarded-Proto upper case", allow: DefaultAllow,
			header: http.Header{"X-Forwarded-Proto": {"HTTPS"}}, remote: keep, scheme: "https"},
		{name: "X-Forwarded-Proto list", allow: DefaultAllow,
			header: http.Header{"X-Forwarded-Proto": {"https, http"}}, remote: keep, scheme: "https"},
		{name: "X-Forwarded-Proto other scheme", allow: DefaultAllow,
			header: http.Header{"X-Forwarded-Proto": {"ftp"}}, remote: keep, scheme: "http"},
		{name: "X-Forwarded-Host", allow: DefaultAllow,
			header: http.Header{"X-Forwarded-Host": {"app.example:8443"}}, remote: keep, host: "app.example:8443", scheme: "http"},
		{name: "X-Forwarded-Host invalid", allow: DefaultAllow,
			header: http.Header{"X-Forwarded-Host": {"evil.example/path"}}, remote: keep, scheme: "http"},
		{name: "all three", allow: DefaultAllow,
			header: http.Header{"X-Forwarded-For": {"198.51.100.9"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"shop.example"}},
			remote: "198.51.100.9:0", host: "shop.example", scheme: "https"},
		{name: "Forwarded", allow: DefaultAllow,
			header: http.Header{"Forwarded": {"for=192.0.2.60;proto=https;host=app.example;by=203.0.113.43"}},
			remote: "192.0.2.60:0", host: "app.example", scheme: "https"},
		{name: "Forwarded quoted IPv6 with port", allow: DefaultAllow,
			header: http.Header{"Forwarded": {`For="[2001:db8:cafe::17]:4711";Proto=HTTPS`}},
			remote: "[2001:db8:cafe::17]:4711", scheme: "https"},
		{name: "Forwarded IPv4 with port", allow: DefaultAllow,
			header: http.Header{"Forwarded": {`for="192.0.2.60:8080"`}}, remote: "192.0.2.60:8080", scheme: "http"},
		{name: "Forwarded first element is the client", allow: DefaultAllow,
			header: http.Header{"Forwarded": {"for=192.0.2.43;proto=https, for=198.51.100.17;proto=http", "for=10.0.0.1"}},
			remote: "192.0.2.43:0", scheme: "https"},
		{name: "Forwarded wins over X-Forwarded-*", allow: DefaultAllow,
			header: http.Header{"Forwarded": {"for=192.0.2.1"}, "X-Forwarded-For": {"203.0.113.99"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"x.example"}},
			remote: "192.0.2.1:0", scheme: "http"},
		{name: "Forwarded for=unknown keeps the peer", allow: DefaultAllow,
			header: http.Header{"Forwarded": {"for=unknown;proto=https"}}, remote: keep, scheme: "https"},
		{name: "Forwarded obfuscated node", allow: DefaultAllow,
			header: http.Header{"Forwarded": {"for=_hidden;host=h.example"}}, remote: keep, host: "h.example", scheme: "http"},
		{name: "Forwarded malformed falls back to X-Forwarded-For", allow: DefaultAllow,
			header: http.Header{"Forwarded": {"for"}, "X-Forwarded-For": {"203.0.113.5"}}, remote: "203.0.113.5:0", scheme: "http"},
		{name: "Forwarded repeated parameter is malformed", allow: DefaultAllow,
			header: http.Header{"Forwarded": {"for=1.1.1.1;for=2.2.2.2"}}, remote: keep, scheme: "http"},
		{name: "Forwarded bad values are ignored", allow: DefaultAllow,
			header: http.Header{"Forwarded": {`for="[2001:db8::1";proto=gopher;host="a b"`}}, remote: keep, scheme: "http"},
		{name: "Forwarded port out of range", allow: DefaultAllow,
			header: http.Header{"Forwarded": {`for="1.2.3.4:70000"`}}, remote: keep, scheme: "http"},
		{name: "untrusted peer: nothing changes", allow: []string{"10.0.0.0/8"},
			header: http.Header{"X-Forwarded-For": {"203.0.113.7"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"evil.example"}},
			remote: keep, scheme: "http"},
		{name: "untrusted peer: Forwarded ignored", allow: []string{"::1"},
			header: http.Header{"Forwarded": {"for=192.0.2.60;proto=https;host=evil.example"}}, remote: keep, scheme: "http"},
		{name: "wildcard trusts everyone", allow: []string{"*"},
			header: http.Header{"X-Forwarded-For": {"203.0.113.7"}}, remote: "203.0.113.7:0", scheme: "http"},
		{name: "CIDR", allow: []string{"127.0.0.0/8"},
			header: http.Header{"X-Forwarded-For": {"203.0.113.8"}}, remote: "203.0.113.8:0", scheme: "http"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr, err := NewTrust(c.allow)
			if err != nil {
				t.Fatal(err)
			}
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

// FuzzForwarded: no header value makes the parsing panic, and what it
// accepts is well-formed.
func FuzzForwarded(f *testing.F) {
	for _, s := range []string{`for=1.2.3.4`, `for="[::1]:80";proto=https;host=a`, `for="\`, `;;,,==`, `for=[`, "for=\x00"} {
		f.Add(s, "1.2.3.4, 5.6.7.8", "example.com")
	}
	f.Fuzz(func(t *testing.T, fwd, xff, xfh string) {
		fw := forwardedFrom(http.Header{"Forwarded": {fwd}, "X-Forwarded-For": {xff}, "X-Forwarded-Host": {xfh}, "X-Forwarded-Proto": {fwd}})
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
	})
}
