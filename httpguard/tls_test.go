package httpguard

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// testCert is a self-signed certificate for 127.0.0.1.
func testCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// syncLog collects log lines.
type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// tlsServer serves handler over TLSListener; it returns the address and
// the error log.
func tlsServer(t *testing.T, handler http.Handler, timeout time.Duration) (string, *syncLog) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncLog{}
	errorLog := log.New(logs, "", 0)
	config := &tls.Config{Certificates: []tls.Certificate{testCert(t)}, NextProtos: []string{"h2", "http/1.1"}}
	srv := &http.Server{Handler: handler, ConnContext: ConnContext, TLSConfig: config, ErrorLog: errorLog}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(TLSListener(ln, config, timeout, errorLog)) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; err != http.ErrServerClosed {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String(), logs
}

func TestTLSListener(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	inner := checking(&seen, &mu)
	addr, logs := tlsServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			http.Error(w, "no r.TLS", http.StatusInternalServerError)
			return
		}
		inner.ServeHTTP(w, r)
	}), 2*time.Second)
	client := &tls.Config{InsecureSkipVerify: true}

	t.Run("HTTP/2", func(t *testing.T) {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: client, ForceAttemptHTTP2: true}, Timeout: 5 * time.Second}
		resp, err := c.Post("https://"+addr+"/h2", "text/plain", strings.NewReader("body"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || string(b) != "POST /h2 body" {
			t.Errorf("%s %d %q", resp.Proto, resp.StatusCode, b)
		}
	})

	const h = "Host: x\r\n"
	chunked := "POST /c HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n"
	for _, c := range []struct {
		name, raw, statuses string
	}{
		{"pipelined", "GET /1 HTTP/1.1\r\n" + h + "\r\nPOST /2 HTTP/1.1\r\n" + h + "Content-Length: 2\r\n\r\nhi", "[200 200]"},
		{"HTTP/1.0 with Transfer-Encoding", "POST /x HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n1c\r\nGET /smuggled HTTP/1.0\r\n\r\n", "[400]"},
		{"whitespace after a chunk size", chunked + "0 \r\n\r\nGET /smuggled HTTP/1.1\r\n" + h + "\r\n", "[400]"},
	} {
		t.Run("HTTP/1.1 "+c.name, func(t *testing.T) {
			conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			io.WriteString(conn, c.raw)
			br := bufio.NewReader(conn)
			var statuses []int
			for {
				conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					break
				}
				io.ReadAll(resp.Body)
				statuses = append(statuses, resp.StatusCode)
			}
			if fmt.Sprint(statuses) != c.statuses {
				t.Errorf("statuses %v, want %s", statuses, c.statuses)
			}
		})
	}
	mu.Lock()
	for _, p := range seen {
		if p == "/smuggled" || p == "/x" {
			t.Errorf("%s reached the handler", p)
		}
	}
	mu.Unlock()

	t.Run("plain HTTP to the TLS port", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(conn)
		if !strings.HasPrefix(string(b), "HTTP/1.0 400 Bad Request") {
			t.Errorf("got %q", b)
		}
		if !strings.Contains(logs.String(), "client sent an HTTP request to an HTTPS server") {
			t.Errorf("log: %q", logs.String())
		}
	})

	t.Run("handshake timeout", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		t0 := time.Now()
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		if d := time.Since(t0); err == nil || d < time.Second || d > 5*time.Second {
			t.Errorf("silent client: %v after %s (timeout 2s)", err, d)
		}
	})
}

// TestTLSHalfClose: a client that sends close_notify after its request is
// only half-closed.
func TestTLSHalfClose(t *testing.T) {
	addr, _ := tlsServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
		fmt.Fprintf(w, "gone=%v", ClientGone(r))
	}), 0)
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	conn.CloseWrite()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, _ := io.ReadAll(conn)
	if !strings.HasSuffix(string(b), "gone=false") {
		t.Errorf("got %q", b)
	}
}
