package hornbeam_test

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hornbeam-go/hornbeam"
)

// TestForwardedSpoofing: through a real server and worker, a client behind
// trusted proxies that append to X-Forwarded-For / Forwarded (the README's
// nginx block) cannot choose REMOTE_ADDR, wsgi.url_scheme or HTTP_HOST.
// The test connects from 127.0.0.1, the proxy next to hornbeam; header
// values name other addresses (6.6.6.6 and evil.com are the client's own
// claims). Every case was read differently by the left-most rule this
// replaced.
func TestForwardedSpoofing(t *testing.T) {
	configs := map[string]hornbeam.Options{
		"default":       {},                                                  // 127.0.0.1, ::1
		"default+host":  {ForwardedHost: true},                               // --forwarded-host
		"two hops":      {ForwardedAllowIPs: []string{"127.0.0.1,10.0.0.2"}}, // 10.0.0.2 -> 127.0.0.1 -> hornbeam
		"two hops+host": {ForwardedAllowIPs: []string{"127.0.0.1", "10.0.0.2"}, ForwardedHost: true},
		"ipv6":          {ForwardedAllowIPs: []string{"127.0.0.1", "::1", "fd00::/8"}, ForwardedHost: true},
		"*":             {ForwardedAllowIPs: []string{"*"}},
	}
	const peer = "127.0.0.1" // REMOTE_ADDR unchanged
	cases := []struct {
		name   string
		config string
		header http.Header
		addr   string // REMOTE_ADDR
		port   string // REMOTE_PORT; "" = any (the peer's)
		scheme string // wsgi.url_scheme
		host   string // HTTP_HOST; "" = the request's own Host
	}{
		// one trusted hop
		{name: "Forwarded beside X-Forwarded-For", config: "default+host", addr: "203.0.113.7", port: "0", scheme: "http",
			header: http.Header{"Forwarded": {"for=6.6.6.6;host=evil.com;proto=https"}, "X-Forwarded-For": {"203.0.113.7"}, "X-Forwarded-Proto": {"http"}}},
		{name: "Forwarded appended to by the proxy", config: "default+host", addr: "203.0.113.7", port: "0", scheme: "http",
			header: http.Header{"Forwarded": {"for=6.6.6.6;host=evil.com;proto=https, for=203.0.113.7;proto=http"}}},
		{name: "Forwarded host= without --forwarded-host", config: "default", addr: "6.6.6.6", port: "0", scheme: "https",
			header: http.Header{"Forwarded": {"for=6.6.6.6;host=evil.com;proto=https"}}},
		{name: "X-Forwarded-For: the right-most entry", config: "default",
			header: http.Header{"X-Forwarded-For": {"1.2.3.4, 5.6.7.8"}}, addr: "5.6.7.8", port: "0", scheme: "http"},
		{name: "X-Forwarded-Proto: the right-most value", config: "default",
			header: http.Header{"X-Forwarded-Proto": {"https, http"}}, addr: peer, scheme: "http"},
		{name: "X-Forwarded-Host without --forwarded-host", config: "default",
			header: http.Header{"X-Forwarded-For": {"203.0.113.7"}, "X-Forwarded-Host": {"evil.com"}}, addr: "203.0.113.7", port: "0", scheme: "http"},
		{name: "X-Forwarded-Host with --forwarded-host: the right-most value", config: "default+host", addr: "203.0.113.7", port: "0", scheme: "http", host: "app.example",
			header: http.Header{"X-Forwarded-For": {"203.0.113.7"}, "X-Forwarded-Host": {"evil.com", "app.example"}}},

		// two trusted hops
		{name: "two hops: X-Forwarded-For", config: "two hops",
			header: http.Header{"X-Forwarded-For": {"6.6.6.6, 1.2.3.4, 10.0.0.2"}}, addr: "1.2.3.4", port: "0", scheme: "http"},
		{name: "two hops, the second not trusted", config: "default",
			header: http.Header{"X-Forwarded-For": {"6.6.6.6, 1.2.3.4, 10.0.0.2"}}, addr: "10.0.0.2", port: "0", scheme: "http"},
		{name: "two hops: Forwarded elements", config: "two hops+host", addr: "1.2.3.4", port: "5555", scheme: "https", host: "app.example",
			header: http.Header{"Forwarded": {"for=6.6.6.6;proto=http;host=evil.com, for=\"1.2.3.4:5555\";proto=https;host=app.example", "for=10.0.0.2;proto=http;host=internal"}}},
		{name: "two hops: Forwarded elements without --forwarded-host", config: "two hops", addr: "1.2.3.4", port: "0", scheme: "https",
			header: http.Header{"Forwarded": {"for=6.6.6.6;proto=http;host=evil.com, for=1.2.3.4;proto=https;host=app.example, for=10.0.0.2;proto=http;host=internal"}}},

		// IPv6 mixed with IPv4
		{name: "IPv6: X-Forwarded-For", config: "ipv6",
			header: http.Header{"X-Forwarded-For": {"6.6.6.6, 2001:db8::1, fd00::2"}}, addr: "2001:db8::1", port: "0", scheme: "http"},
		{name: "IPv6: Forwarded", config: "ipv6", addr: "192.0.2.43", port: "0", scheme: "https", host: "[2001:db8::80]:8443",
			header: http.Header{"Forwarded": {`for="[2001:db8::6]:1";host=evil.com, for=192.0.2.43;proto=https;host="[2001:db8::80]:8443", for="[fd00::2]:80"`}}},

		// "*" trusts every address: the left-most is the client
		{name: "*: left-most address, right-most proto, no host", config: "*", addr: "6.6.6.6", port: "0", scheme: "http",
			header: http.Header{"X-Forwarded-For": {"6.6.6.6, 1.2.3.4"}, "X-Forwarded-Proto": {"https, http"}, "X-Forwarded-Host": {"evil.com"}}},
	}
	servers := map[string]*testServer{}
	client := &http.Client{Timeout: 30 * time.Second}
	for _, c := range cases {
		s := servers[c.config]
		if s == nil { // one server per configuration, for the whole test
			opts := configs[c.config]
			opts.Workers = 1
			s = start(t, "echo", opts)
			servers[c.config] = s
		}
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", s.URL+"/", nil)
			for k, vs := range c.header {
				for _, v := range vs {
					req.Header.Add(k, v)
				}
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			env := echoEnviron(t, resp)
			if env["REMOTE_ADDR"] != c.addr || (c.port != "" && env["REMOTE_PORT"] != c.port) {
				t.Errorf("REMOTE_ADDR %v REMOTE_PORT %v, want %s %s", env["REMOTE_ADDR"], env["REMOTE_PORT"], c.addr, c.port)
			}
			if env["wsgi.url_scheme"] != c.scheme {
				t.Errorf("wsgi.url_scheme %v, want %s", env["wsgi.url_scheme"], c.scheme)
			}
			wantHost := c.host
			if wantHost == "" {
				wantHost = hostOf(s)
			}
			if env["HTTP_HOST"] != wantHost {
				t.Errorf("HTTP_HOST %v, want %s", env["HTTP_HOST"], wantHost)
			}
			if name, _, _ := net.SplitHostPort(wantHost); name != "" && env["SERVER_NAME"] != strings.Trim(name, "[]") {
				t.Errorf("SERVER_NAME %v, want it from %s", env["SERVER_NAME"], wantHost)
			}
			// the headers themselves reach the app as sent
			for k, vs := range c.header {
				key := "HTTP_" + strings.ToUpper(strings.ReplaceAll(k, "-", "_"))
				if env[key] != strings.Join(vs, ",") {
					t.Errorf("%s %v, want %q", key, env[key], strings.Join(vs, ","))
				}
			}
		})
	}
}
