package main

// The command line's contract: exit statuses, --print-config round trips,
// the TLS flags, and never touching a terminal that does not answer.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/hornbeam-go/hornbeam"
	"github.com/hornbeam-go/hornbeam/internal/testutil"
	"github.com/hornbeam-go/hornbeam/pool"
)

// Exit status 2 for every usage or configuration error, with one line
// naming what is wrong and nothing on stdout; --print-config rejects the
// same; 1 for a failure at run time; 0 for --help, help, --version and
// --print-config.
func TestExitStatus(t *testing.T) {
	needPython(t)
	td := testdata(t)
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	bind := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	keyOnly, certOnly := filepath.Join(t.TempDir(), "key.pem"), filepath.Join(t.TempDir(), "cert.pem")
	cert, key := selfSignedPEM(t)
	os.WriteFile(keyOnly, key, 0o600)
	os.WriteFile(certOnly, cert, 0o600)
	notDir := filepath.Join(td, "ok_app.py")

	usage := []struct {
		name string
		args []string
		want string // in the message
	}{
		{"unknown flag", []string{"--no-such-flag"}, "--no-such-flag"},
		{"bad duration", []string{"--timeout", "soon"}, "timeout"},
		{"bind with a bad host", []string{"-b", "bad host"}, "--bind"}, // a host alone is port 8000, as in gunicorn (gunicorn_docs_test.go)
		{"bind port out of range", []string{"-b", "127.0.0.1:99999"}, "--bind"},
		{"bind empty unix path", []string{"-b", "unix:"}, "--bind"},
		{"stats-bind syntax", []string{"--stats-bind", "nonsense"}, "--stats-bind"},
		{"static without =", []string{"--static", "assets"}, "--static"},
		{"static prefix without /", []string{"--static", "assets=" + td}, "--static"},
		{"static missing directory", []string{"--static", "/s=/nonexistent/dir"}, "--static"},
		{"static file not directory", []string{"--static", "/s=" + notDir}, "--static"},
		{"proxy list", []string{"--forwarded-allow-ips", "10.0.0.300"}, "--forwarded-allow-ips"},
		{"proxy CIDR", []string{"--forwarded-allow-ips", "10.0.0.0/99"}, "--forwarded-allow-ips"},
		{"zero workers", []string{"-w", "0"}, "--workers"},
		{"negative workers", []string{"-w", "-1"}, "--workers"},
		{"negative threads", []string{"--threads", "-2"}, "--threads"},
		{"negative max-requests", []string{"--max-requests", "-1"}, "--max-requests"},
		{"negative jitter", []string{"--max-requests-jitter", "-1"}, "--max-requests-jitter"},
		{"negative request line", []string{"--limit-request-line", "-1"}, "--limit-request-line"},
		{"negative fields", []string{"--limit-request-fields", "-1"}, "--limit-request-fields"},
		{"negative field size", []string{"--limit-request-field-size", "-1"}, "--limit-request-field-size"},
		{"negative state bytes", []string{"--state-max-bytes", "-1"}, "--state-max-bytes"},
		{"negative state value bytes", []string{"--state-max-value-bytes", "-1"}, "--state-max-value-bytes"},
		{"health path without /", []string{"--health-path", "healthz"}, "--health-path"},
		{"bad access log format", []string{"--access-logformat", "%(h"}, "--access-logformat"},
		{"worker class gevent", []string{"-k", "gevent"}, "gevent"},
		{"log level", []string{"--log-level", "loud"}, "--log-level"},
		{"umask", []string{"--umask", "999"}, "--umask"},
		{"keyfile without certfile", []string{"--keyfile", keyOnly}, "--certfile"},
		{"certfile without key", []string{"--certfile", certOnly}, "--keyfile"},
		{"bad app spec", []string{"not a spec!"}, "MODULE:CALLABLE"},
		{"two apps", []string{"ok_app", "ok_app"}, "exactly one application"},
		{"check without app", []string{"check"}, "check"},
	}
	for _, tt := range usage {
		for _, printConfig := range []bool{false, true} {
			name := tt.name
			if printConfig {
				name += " --print-config"
			}
			t.Run(name, func(t *testing.T) {
				args := append([]string{"-b", bind, "--pythonpath", td}, tt.args...)
				if !printConfig && !strings.Contains(tt.name, "app") {
					args = append(args, "ok_app")
				}
				if printConfig {
					args = append(args, "--print-config")
				}
				stdout, stderr, code, took := runHB(t, 10*time.Second, nil, args...)
				if code != 2 {
					t.Errorf("exit status %d, want 2", code)
				}
				if took > 3*time.Second {
					t.Errorf("took %s", took)
				}
				if stdout != "" {
					t.Errorf("stdout: %q, want nothing", stdout)
				}
				noGoCrash(t, stderr)
				ls := lines(stderr)
				if len(ls) != 1 || !strings.HasPrefix(ls[0], "hornbeam: ") || !strings.Contains(ls[0], tt.want) {
					t.Errorf("want one \"hornbeam: \" line naming %q; stderr:\n%s", tt.want, stderr)
				}
			})
		}
	}

	runtime := []struct {
		name string
		args []string
	}{
		{"port in use", []string{"-b", held.Addr().String(), "--pythonpath", td, "ok_app"}},
		{"app does not import", []string{"-b", bind, "-w", "1", "--pythonpath", td, "broken"}},
		{"check of an app that does not import", []string{"--pythonpath", td, "check", "broken"}},
	}
	for _, tt := range runtime {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code, _ := runHB(t, 20*time.Second, nil, tt.args...)
			if code != 1 {
				t.Errorf("exit status %d, want 1", code)
			}
			noGoCrash(t, stderr)
		})
	}

	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"--version"}, {"--print-config"}, {"-b", bind, "--print-config", "ok_app"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			stdout, stderr, code, _ := runHB(t, 10*time.Second, nil, args...)
			if code != 0 || stdout == "" || stderr != "" {
				t.Errorf("exit %d, stdout %d bytes, stderr %q; want 0, output on stdout only", code, len(stdout), stderr)
			}
		})
	}
}

// withoutComments drops the "# where it came from" comments of
// --print-config's output.
func withoutComments(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "#") {
			continue
		}
		if i := strings.Index(l, "  # "); i >= 0 {
			l = l[:i]
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// --print-config's output, loaded back with --config, gives the same
// configuration: arrays stay arrays (one entry each, commas and all),
// durations and sizes parse back.
func TestPrintConfigRoundTrip(t *testing.T) {
	dir := t.TempDir()
	comma := filepath.Join(dir, "a,b")
	os.Mkdir(comma, 0o755)
	tests := []struct {
		name string
		env  []string
		args []string
		want []string // lines of the printed file
	}{
		{"defaults", nil, nil, []string{`max_requests = 0`, `bind = ["127.0.0.1:8000"]`, `static = []`, `timeout = "30s"`, `max_body_size = "1073741824"`}},
		{"static and binds", nil, []string{"--static", "/s=" + dir, "--static", "/t=" + comma, "-b", "127.0.0.1:9001", "-b", "unix:" + filepath.Join(dir, "s.sock"), "--pythonpath", "a,b"},
			[]string{fmt.Sprintf(`static = ["/s=%s", "/t=%s"]`, dir, comma), `pythonpath = ["a", "b"]`}},
		{"durations", nil, []string{"--timeout", "1m30s", "--keepalive", "0.5", "--graceful-timeout", "0", "--body-timeout", "90"},
			[]string{`timeout = "1m30s"`, `keepalive = "500ms"`, `graceful_timeout = "0s"`, `body_timeout = "1m30s"`}},
		{"sizes", nil, []string{"--max-body-size", "512M", "--max-worker-memory", "1G"}, []string{`max_body_size = "536870912"`, `max_worker_memory = "1073741824"`}},
		{"strings with quotes and tabs", nil, []string{"--access-logformat", "%(h)s \"%(r)s\"\t%({x-y}i)s \\ end", "--health-path", "/healthz", "--umask", "007"},
			[]string{`access_logformat = "%(h)s \"%(r)s\"\t%({x-y}i)s \\ end"`, `health_path = "/healthz"`, `umask = "007"`}},
		{"lists and switches", nil, []string{"--forwarded-allow-ips", "10.0.0.0/8,192.168.1.1", "--proxy-protocol", "--preload", "--log-level", "debug"},
			[]string{`forwarded_allow_ips = ["10.0.0.0/8", "192.168.1.1"]`, `proxy_protocol = true`, `log_level = "debug"`}},
		{"environment", []string{"HORNBEAM_WORKERS=3", "HORNBEAM_STATIC=/e=" + dir}, nil, []string{`workers = 3`, fmt.Sprintf(`static = ["/e=%s"]`, dir)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out1, stderr, code, _ := runHB(t, 10*time.Second, tt.env, append(tt.args, "--print-config")...)
			if code != 0 {
				t.Fatalf("--print-config: exit %d: %s", code, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains("\n"+withoutComments(out1)+"\n", "\n"+w+"\n") {
					t.Errorf("--print-config lacks the line %s:\n%s", w, out1)
				}
			}
			file := filepath.Join(t.TempDir(), "hornbeam.toml")
			os.WriteFile(file, []byte(out1), 0o644)
			out2, stderr, code, _ := runHB(t, 10*time.Second, nil, "--config", file, "--print-config")
			if code != 0 {
				t.Fatalf("--config (the printed file) --print-config: exit %d: %s\nfile:\n%s", code, stderr, out1)
			}
			if withoutComments(out2) != withoutComments(out1) {
				t.Errorf("loaded back, the configuration changed:\nprinted:\n%s\nloaded and printed:\n%s", out1, out2)
			}
			// Printed from the file, the output is a fixed point.
			os.WriteFile(file, []byte(out2), 0o644)
			out3, _, _, _ := runHB(t, 10*time.Second, nil, "--config", file, "--print-config")
			if out3 != out2 {
				t.Errorf("printing the printed file again differs:\n%s\nthen:\n%s", out2, out3)
			}
		})
	}
}

// selfSignedPEM makes a certificate for 127.0.0.1 and its key, as PEM.
func selfSignedPEM(t *testing.T) (cert, key []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(k)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// TLS: a certificate and key in two files or in one PEM serve HTTPS and
// the banner says https://; one half alone is a usage error naming the
// other; without TLS the banner says http://.
func TestTLSFlags(t *testing.T) {
	needPython(t)
	cert, key := selfSignedPEM(t)
	dir := t.TempDir()
	certFile, keyFile, both := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "both.pem")
	os.WriteFile(certFile, cert, 0o600)
	os.WriteFile(keyFile, key, 0o600)
	os.WriteFile(both, append(append([]byte{}, key...), cert...), 0o600)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(cert)
	tests := []struct {
		name   string
		args   []string
		code   int    // 0: serves
		want   string // in the usage message, or the banner's scheme
		scheme string
	}{
		{"certfile and keyfile", []string{"--certfile", certFile, "--keyfile", keyFile}, 0, "https://", "https"},
		{"one PEM with both", []string{"--certfile", both}, 0, "https://", "https"},
		{"no TLS", nil, 0, "http://", "http"},
		{"keyfile alone", []string{"--keyfile", keyFile}, 2, "--certfile", ""},
		{"certfile without a key", []string{"--certfile", certFile}, 2, "--keyfile", ""},
		{"key that is no certificate", []string{"--certfile", keyFile}, 2, "--certfile", ""},
		{"missing certfile", []string{"--certfile", filepath.Join(dir, "nope.pem"), "--keyfile", keyFile}, 2, "--certfile", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port := freePort(t)
			args := append([]string{"-b", fmt.Sprintf("127.0.0.1:%d", port), "-w", "1", "--pythonpath", testdata(t)}, tt.args...)
			args = append(args, "ok_app")
			if tt.code != 0 {
				_, stderr, code, _ := runHB(t, 10*time.Second, nil, args...)
				if ls := lines(stderr); code != tt.code || len(ls) != 1 || !strings.Contains(ls[0], tt.want) {
					t.Errorf("exit %d, stderr %q; want %d and one line naming %s", code, stderr, tt.code, tt.want)
				}
				return
			}
			p := startHB(t, nil, args...)
			p.waitReady(p.stderr.String)
			if banner := fmt.Sprintf("listening on %s127.0.0.1:%d", tt.want, port); !strings.Contains(p.stderr.String(), banner) {
				t.Errorf("no %q in the log:\n%s", banner, p.stderr)
			}
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
			defer client.CloseIdleConnections()
			code, body := get(t, client, fmt.Sprintf("%s://127.0.0.1:%d/hello", tt.scheme, port))
			if code != 200 || body != "hello from ok_app" {
				t.Errorf("%s: %d %q", tt.scheme, code, body)
			}
		})
	}
}

// The command never queries the terminal: on a terminal that never
// answers (its other end only reads), --version and the other quick
// commands return at once, and `hornbeam top` shows its screen at once and
// quits on q. (Bubble Tea's package init asked the terminal for its
// background colour and waited 5 s, in every hornbeam command.)
func TestSilentTerminal(t *testing.T) {
	stats := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := hornbeam.Stats{Stats: pool.Stats{Workers: []pool.WorkerStats{{PID: 4242, Slot: 1, State: "idle"}}}}
		json.NewEncoder(w).Encode(st)
	}))
	defer stats.Close()
	dead := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	tests := []struct {
		name   string
		args   []string
		code   int
		within time.Duration
		screen string // for the live screen: shown, then q typed
	}{
		{"--version", []string{"--version"}, 0, time.Second, ""},
		{"--help", []string{"--help"}, 0, time.Second, ""},
		{"usage error", []string{"-w", "0", "app"}, 2, time.Second, ""},
		{"top --once against a dead address", []string{"top", "--once", dead}, 1, 2 * time.Second, ""},
		{"top live screen", []string{"top", "--interval", "200ms", stats.Listener.Addr().String()}, 0, 2 * time.Second, "4242"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ptmx, tty, err := pty.Open()
			if err != nil {
				t.Skipf("no pseudo-terminal: %v", err)
			}
			defer ptmx.Close()
			cmd := exec.Command(hornbeamBin, tt.args...)
			cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
			// The terminal is the process's controlling terminal, it runs
			// in the foreground, TERM names a terminal that answers
			// queries and CI is unset: everything a library checks
			// before it asks.
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "CI=") && !strings.HasPrefix(kv, "TERM=") && !strings.HasPrefix(kv, "HORNBEAM_") {
					cmd.Env = append(cmd.Env, kv)
				}
			}
			cmd.Env = append(cmd.Env, "TERM=xterm-256color", "COLORTERM=truecolor")
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
			screen := &testutil.SyncBuffer{}
			read := make(chan struct{})
			go func() {
				defer close(read)
				buf := make([]byte, 4096)
				for {
					n, err := ptmx.Read(buf)
					screen.Write(buf[:n])
					if err != nil {
						return
					}
				}
			}()
			start := time.Now()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			tty.Close()
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			defer func() {
				cmd.Process.Kill()
				<-done
				ptmx.Close()
				<-read
			}()
			if tt.screen != "" {
				if !until(tt.within, func() bool { return strings.Contains(screen.String(), tt.screen) }) {
					t.Fatalf("no screen with %q within %s:\n%q", tt.screen, tt.within, screen)
				}
				ptmx.Write([]byte("q"))
			}
			select {
			case <-done:
			case <-time.After(tt.within):
				t.Fatalf("still running after %s; screen:\n%q", tt.within, screen)
			}
			if took := time.Since(start); took > tt.within {
				t.Errorf("took %s, want under %s", took, tt.within)
			}
			if code := cmd.ProcessState.ExitCode(); code != tt.code {
				t.Errorf("exit status %d, want %d; screen:\n%q", code, tt.code, screen)
			}
			if strings.Contains(screen.String(), "\x1b]11;?") || strings.Contains(screen.String(), "\x1b[6n") {
				t.Errorf("the terminal was queried:\n%q", screen)
			}
		})
	}
}

// README.md's list of flags is `hornbeam --help`'s, word for word.
func TestREADMEFlagsMatchHelp(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Skipf("no README: %v", err)
	}
	s := string(readme)
	i := strings.Index(s, "\n## Flags\n")
	if i < 0 {
		t.Fatal("README.md has no \"## Flags\" section")
	}
	s = s[i:]
	a := strings.Index(s, "\n```\n")
	b := strings.Index(s[a+5:], "\n```\n")
	if a < 0 || b < 0 {
		t.Fatal("no code block in README.md's Flags section")
	}
	documented := s[a+5 : a+5+b+1]
	stdout, _, code, _ := runHB(t, 10*time.Second, nil, "--help")
	j := strings.Index(stdout, "Flags:\n")
	if code != 0 || j < 0 {
		t.Fatalf("--help: exit %d:\n%s", code, stdout)
	}
	help := stdout[j+len("Flags:\n"):]
	if documented != help {
		t.Errorf("README.md's flags differ from hornbeam --help; paste this into the Flags section:\n%s", help)
	}
}
