package main

// gunicorn's --ca-certs/--cert-reqs (client certificates), --ciphers and
// -u/-g/--initgroups, through the binary with real TLS handshakes and
// real worker processes.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testCA is a certificate authority for the tests' client certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(100), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: k, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// client issues a client certificate signed by the CA.
func (ca *testCA) client(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(101), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &k.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}

// tlsGet does GET /hello over TLS with the given client configuration and
// returns the status (0 when the handshake or the request failed) and the
// negotiated cipher suite.
func tlsGet(addr string, conf *tls.Config) (int, uint16, error) {
	var suite uint16
	tr := &http.Transport{TLSClientConfig: conf, DialTLS: func(network, a string) (net.Conn, error) {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, network, a, conf)
		if err == nil {
			suite = c.ConnectionState().CipherSuite
		}
		return c, err
	}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Timeout: 10 * time.Second, Transport: tr}
	resp, err := client.Get("https://" + addr + "/hello")
	if err != nil {
		return 0, suite, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, suite, nil
}

// --ca-certs with --cert-reqs 2 serves only clients whose certificate the
// CA signed; with 1 a client without one is served too, one signed by
// another CA is not; without --cert-reqs clients are not asked (a warning
// says so). The settings come from a gunicorn.conf.py as well.
func TestClientCertificates(t *testing.T) {
	needPython(t)
	dir := t.TempDir()
	cert, key := selfSignedPEM(t)
	certFile, keyFile, caFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "ca.pem")
	ca, other := newTestCA(t, "hornbeam test CA"), newTestCA(t, "another CA")
	writeFile(t, certFile, string(cert))
	writeFile(t, keyFile, string(key))
	writeFile(t, caFile, string(ca.pem))
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(cert)
	good, bad := ca.client(t, "alice"), other.client(t, "mallory")
	type want struct{ none, good, bad bool } // served without a certificate, with the CA's, with another CA's
	for _, c := range []struct {
		name string
		args []string
		conf string
		want want
	}{
		{"--cert-reqs 2", []string{"--ca-certs", caFile, "--cert-reqs", "2"}, "", want{false, true, false}},
		{"--cert-reqs required", []string{"--ca-certs", caFile, "--cert-reqs", "required"}, "", want{false, true, false}},
		{"--cert-reqs 1", []string{"--ca-certs", caFile, "--cert-reqs", "1"}, "", want{true, true, false}},
		{"--ca-certs alone", []string{"--ca-certs", caFile}, "", want{true, true, true}},
		{"gunicorn.conf.py with ssl.CERT_REQUIRED", nil, fmt.Sprintf("import ssl\ncertfile = %q\nkeyfile = %q\nca_certs = %q\ncert_reqs = ssl.CERT_REQUIRED\n", certFile, keyFile, caFile), want{false, true, false}},
	} {
		for _, mode := range []string{"process", "embedded"} {
			t.Run(mode+"/"+c.name, func(t *testing.T) {
				port := freePort(t)
				args := []string{"-b", fmt.Sprintf("127.0.0.1:%d", port), "-w", "1", "--pythonpath", testdata(t), "--worker-mode", mode}
				if c.conf != "" {
					conf := filepath.Join(t.TempDir(), "gunicorn.conf.py")
					writeFile(t, conf, c.conf)
					args = append(args, "-c", conf)
				} else {
					args = append(append(args, "--certfile", certFile, "--keyfile", keyFile), c.args...)
				}
				p := startHB(t, nil, append(args, "ok_app")...)
				p.waitReady(p.stderr.String)
				addr := fmt.Sprintf("127.0.0.1:%d", port)
				for _, k := range []struct {
					what  string
					certs []tls.Certificate
					want  bool
				}{{"no client certificate", nil, c.want.none}, {"the CA's client certificate", []tls.Certificate{good}, c.want.good}, {"another CA's client certificate", []tls.Certificate{bad}, c.want.bad}} {
					conf := &tls.Config{RootCAs: roots}
					if k.certs != nil { // sent even when the server names other CAs (Go's client would send none)
						conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &k.certs[0], nil }
					}
					code, _, err := tlsGet(addr, conf)
					if served := code == 200; served != k.want {
						t.Errorf("%s: status %d (%v); want served=%v", k.what, code, err, k.want)
					}
				}
				warned := strings.Contains(p.stderr.String(), "--ca-certs has no effect without --cert-reqs")
				if warned != (c.name == "--ca-certs alone") {
					t.Errorf("the --ca-certs warning: %v\n%s", warned, p.stderr)
				}
			})
		}
	}
	// Settings that cannot work: exit 2, one line saying what to do.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--certfile", certFile, "--keyfile", keyFile, "--cert-reqs", "2"}, "--ca-certs"},
		{[]string{"--certfile", certFile, "--keyfile", keyFile, "--ca-certs", keyFile, "--cert-reqs", "2"}, "holds no PEM certificate"},
		{[]string{"--ca-certs", caFile, "--cert-reqs", "2"}, "--certfile"},
		{[]string{"--certfile", certFile, "--keyfile", keyFile, "--cert-reqs", "maybe"}, "want 0 (none), 1 (optional) or 2 (required)"},
	} {
		_, stderr, code, _ := runHB(t, 10*time.Second, nil, append(append([]string{"--pythonpath", testdata(t)}, c.args...), "ok_app")...)
		if ls := lines(stderr); code != 2 || len(ls) != 1 || !strings.Contains(ls[0], c.want) {
			t.Errorf("hornbeam %s: exit %d, stderr %q; want 2 and one line with %q", strings.Join(c.args, " "), code, stderr, c.want)
		}
	}
}

func TestParseCiphers(t *testing.T) {
	for _, c := range []struct {
		in    string
		want  []uint16
		warns int
	}{
		{"ECDHE-ECDSA-AES128-GCM-SHA256", []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}, 0},
		{"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256", []uint16{tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}, 0},
		// Mozilla's "intermediate" list: the DHE suites Go lacks are left out, with a warning each.
		{"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305",
			[]uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256}, 3},
		{"ECDHE-RSA-AES128-GCM-SHA256:!aNULL:!MD5:!RC4", []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}, 0},
		{"ECDHE-RSA-AES128-GCM-SHA256:AES128-SHA:!AES128-SHA", []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}, 0},
		{"TLS_AES_128_GCM_SHA256:ECDHE-RSA-AES128-GCM-SHA256:DES-CBC3-SHA", []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}, 2},
	} {
		got, warns, err := parseCiphers(c.in)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(c.want) || len(warns) != c.warns {
			t.Errorf("parseCiphers(%q) = %v, %q, %v; want %v and %d warnings", c.in, got, warns, err, c.want, c.warns)
		}
	}
	for _, in := range []string{"HIGH:!aNULL", "DEFAULT", "ECDHE+AESGCM", "ECDHE-RSA-AES128-GCM-SHA256:@STRENGTH", "DHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256:!SHA1", "", "ECDHE-RSA-AES256-GCM-SHA384"} {
		if got, _, err := parseCiphers(in); err == nil {
			t.Errorf("parseCiphers(%q) = %v, accepted", in, got)
		}
	}
}

// --ciphers limits the TLS 1.2 suites the server accepts; an OpenSSL
// keyword it cannot evaluate is exit 2 with what to write instead.
func TestCiphersFlag(t *testing.T) {
	needPython(t)
	dir := t.TempDir()
	cert, key := selfSignedPEM(t)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeFile(t, certFile, string(cert))
	writeFile(t, keyFile, string(key))
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(cert)
	for _, mode := range []string{"process", "embedded"} {
		t.Run(mode, func(t *testing.T) { ciphersServed(t, certFile, keyFile, roots, mode) })
	}
	_, stderr, code, _ := runHB(t, 10*time.Second, nil, "--certfile", certFile, "--keyfile", keyFile, "--ciphers", "HIGH:!aNULL:!MD5", "ok_app")
	if ls := lines(stderr); code != 2 || len(ls) != 1 || !strings.Contains(ls[0], `"HIGH" is an OpenSSL keyword`) || !strings.Contains(ls[0], "ECDHE-ECDSA-AES128-GCM-SHA256") {
		t.Errorf("--ciphers HIGH:!aNULL:!MD5: exit %d, %q", code, stderr)
	}
	_, stderr, code, _ = runHB(t, 10*time.Second, nil, "--certfile", certFile, "--keyfile", keyFile, "--ciphers", "ECDHE-ECDSA-AES256-GCM-SHA384", "ok_app")
	if ls := lines(stderr); code != 2 || len(ls) != 1 || !strings.Contains(ls[0], "HTTP/2") || !strings.Contains(ls[0], "ECDHE-ECDSA-AES128-GCM-SHA256") {
		t.Errorf("--ciphers without a suite HTTP/2 needs: exit %d, %q", code, stderr)
	}
	_, stderr, code, _ = runHB(t, 10*time.Second, nil, "--ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256", "ok_app")
	if code != 2 || !strings.Contains(stderr, "--ciphers") || !strings.Contains(stderr, "--certfile") {
		t.Errorf("--ciphers without TLS: exit %d, %q", code, stderr)
	}
}

// procStatus returns the Uid, Gid and Groups lines of /proc/PID/status.
func procStatus(pid int) (uid, gid, groups string) {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(l, ":")
		f := strings.Fields(v)
		switch k {
		case "Uid":
			uid = f[0] + "/" + f[1]
		case "Gid":
			gid = f[0] + "/" + f[1]
		case "Groups":
			groups = strings.Join(f, ",")
		}
	}
	return
}

// -u/-g: the workers run as that user and group (real and effective),
// with no supplementary group but the one (the user's, with --initgroups),
// and still serve; the server and its zygote keep root. Started as
// another user, hornbeam refuses with the reason.
func TestWorkerUserAndGroup(t *testing.T) {
	needPython(t)
	if os.Geteuid() != 0 {
		t.Skip("switching the workers' user needs root")
	}
	for _, c := range []struct {
		args                []string
		uid, gid, groups    string
		conf                string
		hookSeesRoot, check bool
	}{
		{args: []string{"-u", "nobody", "-g", "nogroup"}, uid: "65534/65534", gid: "65534/65534", groups: "65534"},
		{args: []string{"-u", "65534"}, uid: "65534/65534", gid: "65534/65534", groups: "65534"},
		{args: []string{"--user", "nobody", "--group", "daemon"}, uid: "65534/65534", gid: "1/1", groups: "1"},
		{args: []string{"-u", "daemon", "--initgroups"}, uid: "1/1", gid: "1/1", groups: "1"},
		{conf: "user = 'nobody'\ngroup = 65534\n", uid: "65534/65534", gid: "65534/65534", groups: "65534"},
	} {
		t.Run(strings.Join(c.args, " ")+c.conf, func(t *testing.T) {
			port := freePort(t)
			events := filepath.Join(t.TempDir(), "events")
			os.Chmod(filepath.Dir(events), 0o777)
			os.Chmod(filepath.Dir(filepath.Dir(events)), 0o755)
			writeFile(t, events, "")
			os.Chmod(events, 0o666) // written by the workers before and after they switch
			args := append([]string{"-b", fmt.Sprintf("127.0.0.1:%d", port), "-w", "2", "--pythonpath", testdata(t)}, c.args...)
			// post_fork runs before the switch (as root), post_worker_init after it.
			conf := c.conf + fmt.Sprintf("import os\ndef post_fork(server, worker):\n    open(%q, 'a').write('post_fork %%d\\n' %% os.geteuid())\ndef post_worker_init(worker):\n    open(%q, 'a').write('post_worker_init %%d\\n' %% os.geteuid())\n", events, events)
			confFile := filepath.Join(t.TempDir(), "gunicorn.conf.py")
			writeFile(t, confFile, conf)
			args = append(args, "-c", confFile)
			p := startHB(t, nil, append(args, "ok_app")...)
			p.waitReady(p.stderr.String)
			if b := body(fmt.Sprintf("http://127.0.0.1:%d/hello", port)); b != "hello from ok_app" {
				t.Errorf("GET /hello: %q", b)
			}
			ws := workers(p.cmd.Process.Pid)
			if len(ws) != 2 {
				t.Fatalf("%d workers, want 2", len(ws))
			}
			for _, w := range ws {
				if uid, gid, groups := procStatus(w); uid != c.uid || gid != c.gid || groups != c.groups {
					t.Errorf("worker %d: Uid %s Gid %s Groups %s; want %s, %s, %s", w, uid, gid, groups, c.uid, c.gid, c.groups)
				}
			}
			if uid, _, _ := procStatus(p.cmd.Process.Pid); uid != "0/0" {
				t.Errorf("the server runs as %s, want root (0/0)", uid)
			}
			for _, z := range directChildren(p.cmd.Process.Pid) {
				if uid, _, _ := procStatus(z); uid != "0/0" {
					t.Errorf("the zygote %d runs as %s, want root", z, uid)
				}
			}
			ev := strings.Join(readLines(events), "\n")
			wantUID := strings.Split(c.uid, "/")[0]
			if countPrefix(readLines(events), "post_fork 0") != 2 || countPrefix(readLines(events), "post_worker_init "+wantUID) != 2 {
				t.Errorf("hooks saw euids:\n%s\nwant post_fork as root, post_worker_init as %s", ev, wantUID)
			}
			p.cmd.Process.Signal(syscall.SIGTERM)
			if code := p.wait(30 * time.Second); code != 0 {
				t.Errorf("exit %d after SIGTERM", code)
			}
		})
	}
	// Unknown names: exit 2.
	for _, args := range [][]string{{"-u", "no-such-user-here"}, {"-g", "no-such-group-here"}, {"-u", "nobody", "--worker-mode", "embedded"}} {
		_, stderr, code, _ := runHB(t, 10*time.Second, nil, append(append([]string{"--pythonpath", testdata(t)}, args...), "ok_app")...)
		if ls := lines(stderr); code != 2 || len(ls) != 1 {
			t.Errorf("hornbeam %s: exit %d, %q; want 2 and one line", strings.Join(args, " "), code, stderr)
		}
	}
	// Not root: -u another user is refused, saying why; -u oneself is fine.
	bin := filepath.Join(t.TempDir(), "hornbeam")
	os.Chmod(filepath.Dir(bin), 0o755)
	os.Chmod(filepath.Dir(filepath.Dir(bin)), 0o755)
	if b, err := os.ReadFile(hornbeamBin); err != nil || os.WriteFile(bin, b, 0o755) != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-u", "daemon"}, 2, "not root"},
		{[]string{"-u", "nobody", "-g", "nogroup", "--print-config"}, 0, ""},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append([]string{"--python", python, "--pythonpath", testdata(t)}, append(c.args, "ok_app")...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		cmd.Dir = "/"
		cmd.Env = []string{"PATH=/usr/bin:/bin", "TMPDIR=/tmp"}
		out, err := cmd.CombinedOutput()
		if cmd.ProcessState == nil {
			t.Fatalf("running %s as nobody: %v", bin, err)
		}
		if cmd.ProcessState.ExitCode() != c.code || !strings.Contains(string(out), c.want) {
			t.Errorf("as nobody, hornbeam %s: exit %d, %q; want %d and %q", strings.Join(c.args, " "), cmd.ProcessState.ExitCode(), out, c.code, c.want)
		}
	}
}

// ciphersServed: the suites --ciphers allows are the only TLS 1.2 ones
// the server accepts, in the worker mode given.
func ciphersServed(t *testing.T, certFile, keyFile string, roots *x509.CertPool, mode string) {
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p := startHB(t, nil, "-b", addr, "-w", "1", "--pythonpath", testdata(t), "--certfile", certFile, "--keyfile", keyFile,
		"--worker-mode", mode, "--ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384", "ok_app")
	p.waitReady(p.stderr.String)
	if !strings.Contains(p.stderr.String(), "hornbeam: warning: --ciphers: DHE-RSA-AES256-GCM-SHA384 is left out: Go's TLS does not implement it") {
		t.Errorf("no warning for the DHE suite:\n%s", p.stderr)
	}
	tls12 := func(suites ...uint16) *tls.Config {
		return &tls.Config{RootCAs: roots, MaxVersion: tls.VersionTLS12, CipherSuites: suites}
	}
	if code, suite, err := tlsGet(addr, tls12(tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)); code != 200 || suite != tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 {
		t.Errorf("TLS 1.2 offering both: %d, suite %s (%v); want 200 with ECDHE-ECDSA-AES128-GCM-SHA256", code, tls.CipherSuiteName(suite), err)
	}
	if code, _, err := tlsGet(addr, tls12(tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256)); code != 0 {
		t.Errorf("TLS 1.2 offering only a suite --ciphers leaves out: %d (%v), want a failed handshake", code, err)
	}
	if code, _, err := tlsGet(addr, &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13}); code != 200 {
		t.Errorf("TLS 1.3: %d (%v); want 200 (its suites are Go's)", code, err)
	}
}
