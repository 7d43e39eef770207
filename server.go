// Package hornbeam runs Python WSGI applications behind a Go HTTP server.
//
// Start a server on an application, the Go equivalent of the Erlang
// Hornbeam's hornbeam:start("app:application", #{workers => 8}):
//
//	srv, err := hornbeam.Start(ctx, "app:application", hornbeam.Options{
//		Bind:    []string{"127.0.0.1:8000"},
//		Workers: 8,
//		Timeout: 30 * time.Second,
//	})
//	...
//	views, _ := srv.StateIncr("page_views", 0)
//	fmt.Println(srv.Stats().Workers)
//	srv.Stop(ctx)
//
// Go owns every client socket (HTTP/1.x, HTTP/2 over TLS and cleartext
// h2c); Python worker processes run the app (package pool); requests and
// responses cross over a framed socket (internal/wire); the shared state
// lives here (package state) and Python reaches it as hornbeam.state_*.
package hornbeam

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hornbeam-go/hornbeam/accesslog"
	"github.com/hornbeam-go/hornbeam/errlog"
	"github.com/hornbeam-go/hornbeam/pool"
	"github.com/hornbeam-go/hornbeam/proxy"
	"github.com/hornbeam-go/hornbeam/python"
	"github.com/hornbeam-go/hornbeam/state"
	"github.com/hornbeam-go/hornbeam/static"
	"github.com/hornbeam-go/hornbeam/wsgi"
)

// Version is hornbeam's version.
const Version = "0.1.0"

// Options configure a Server. The zero value of each field means its
// documented default.
type Options struct {
	Bind              []string       // "HOST:PORT" or "unix:/path"; default 127.0.0.1:8000
	Listeners         []net.Listener // already open listeners, used besides Bind
	Workers           int            // default 4
	Threads           int            // default 1
	Timeout           time.Duration  // per request; default 30s; negative = none
	Keepalive         time.Duration  // idle keep-alive; default 2s
	GracefulTimeout   time.Duration  // for Stop; default 30s
	MaxRequests       int            // recycle after N requests; 0 = never
	MaxRequestsJitter int
	PythonPath        []string // default ["."]
	Preload           bool     // import the app once in a zygote that forks the workers
	CPUAffinity       bool     // pin worker i, and the thread serving its state calls, to CPU i (round robin)
	Python            string   // default "python3"
	CertFile, KeyFile string   // TLS; HTTP/2 through ALPN
	AccessLog         io.Writer
	AccessLogFormat   string   // gunicorn atoms; "" = accesslog.DefaultFormat
	AccessLogJSON     bool     // JSON lines instead of the format
	ForwardedAllowIPs []string // proxies trusted for Forwarded/X-Forwarded-*; nil = 127.0.0.1, ::1
	// WorkerMode is ModeProcess or ModeEmbedded. Default: embedded for
	// Interface "asgi", mounts, or when the worker library is there (see
	// WorkerLibrary); else process (Server.Mode says why).
	WorkerMode string
	// WorkerLibrary is the embedded worker built as a shared library
	// (go build -buildmode=c-shared -o hornbeam-worker.so ./cmd/hornbeam-worker).
	// With it each embedded worker is the Python interpreter itself (the
	// Python executable's interpreter, and no shared libpython needed)
	// with the library loaded into it. Default: hornbeam-worker.so beside
	// the running binary if it is there; "-": none, load libpython.
	WorkerLibrary         string
	Interface             string        // "wsgi", "asgi", or "" (auto: the embedded mode recognises an ASGI app)
	Mounts                []string      // "PREFIX=MODULE:CALLABLE": apps under path prefixes (embedded mode)
	Lifespan              string        // ASGI lifespan: "auto" (default), "on" or "off"
	WSPingInterval        time.Duration // ping idle WebSockets this often; default 20s; negative = never
	WSPingTimeout         time.Duration // close a WebSocket whose pong takes longer; default 20s
	WSMaxMessageSize      int64         // largest WebSocket message taken, inflated (1009 beyond); default 16 MiB
	WSDeflate             bool          // offer permessage-deflate (no context takeover)
	ForwardedHost         bool          // take the host from a trusted proxy's Forwarded host= / X-Forwarded-Host; off: keep the Host header
	ProxyProtocol         bool          // accept PROXY protocol v1/v2 from trusted proxies
	Static                []string      // "URL_PREFIX=DIR" mappings served by Go
	ErrorLog              io.Writer     // default os.Stderr; lines are stamped by an errlog.Writer (this one, if it is one)
	MaxBodySize           int64         // default 1 GiB; negative = unlimited
	SpoolThreshold        int64         // request bodies above this reach the worker as a temporary file; default 64 KiB
	ReadHeaderTimeout     time.Duration // default 10s
	LimitRequestLine      int           // default 4094
	LimitRequestFields    int           // default 100
	LimitRequestFieldSize int           // default 8190
	StatsBind             string        // serve /stats and /metrics there; "" = off
	BodyTimeout           time.Duration // a request body stalled this long is dropped; default 30s; negative = none
	MaxWorkerMemory       int64         // recycle a worker past this RSS in bytes; 0 = no bound
	HealthPath            string        // answered by Go: 200 while a worker is ready, else 503; "" = off
	ReloadOnChange        bool          // reload the workers when a .py file under PythonPath changes
	UnixSocketMode        os.FileMode   // permissions of unix socket binds; 0 = as created
	StateMaxBytes         int64         // 0 = unbounded
	StateMaxValueBytes    int           // default 64 MiB
	// Store replaces the built-in in-memory state store.
	Store state.Store

	// gunicorn's --ca-certs/--cert-reqs, --ciphers and -u/-g (clienttls.go).
	ClientCAFile string             // PEM CAs client certificates must chain to (mTLS)
	ClientAuth   tls.ClientAuthType // with ClientCAFile: tls.VerifyClientCertIfGiven or tls.RequireAndVerifyClientCert
	CipherSuites []uint16           // TLS 1.2 cipher suites; nil = Go's defaults
	WorkerUser   *WorkerUser        // the user the workers switch to (embedded: hosted ones only); nil = the server's
	// WorkerAbortHook: the workers have a worker_abort hook (gunicorn.conf.py):
	// a worker killed for a stuck request gets SIGABRT before SIGKILL.
	WorkerAbortHook bool
}

func (o *Options) defaults() {
	if len(o.Bind) == 0 && len(o.Listeners) == 0 {
		o.Bind = []string{"127.0.0.1:8000"}
	}
	setDefault(&o.Workers, 4)
	setDefault(&o.Threads, 1)
	setDefault(&o.Timeout, 30*time.Second)
	setDefault(&o.Keepalive, 2*time.Second)
	setDefault(&o.GracefulTimeout, 30*time.Second)
	setDefault(&o.ReadHeaderTimeout, 10*time.Second)
	setDefault(&o.BodyTimeout, 30*time.Second)
	setDefault(&o.MaxBodySize, 1<<30)
	setDefault(&o.LimitRequestLine, 4094)
	setDefault(&o.LimitRequestFields, 100)
	setDefault(&o.LimitRequestFieldSize, 8190)
	setDefault(&o.Python, "python3")
	if o.WorkerMode == "" && (o.Interface == "asgi" || len(o.Mounts) > 0) {
		o.WorkerMode = ModeEmbedded // ASGI and mounts run only there
	}
	if len(o.PythonPath) == 0 {
		o.PythonPath = []string{"."}
	}
	if o.ErrorLog == nil {
		o.ErrorLog = os.Stderr
	}
}

func setDefault[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

// Server is a running hornbeam server.
type Server struct {
	opts       Options
	app        string
	errorLog   *log.Logger
	pool       *pool.Pool
	store      state.Store
	ownStore   *state.Memory
	versions   *versions // the state change table workers cache against; nil: no caching
	runtimeDir string
	mode       string   // the worker mode and how it runs, for Mode
	balance    *os.File // the embedded workers' balance table, or nil
	listeners  []net.Listener
	http       *http.Server
	statsSrv   *http.Server
	statsLn    net.Listener
	metrics    *metrics
	trust      *proxy.Trust
	serveErr   chan error
	stopOnce   sync.Once
	stopErr    error
	done       chan struct{}
}

// Start imports app ("module:callable", callable defaulting to
// "application") in the workers and starts serving. It returns once every
// worker is ready; if the app cannot be imported the error carries the
// Python traceback (*pool.StartError).
func Start(ctx context.Context, app string, opts Options) (*Server, error) {
	opts.defaults()
	why := opts.chooseMode()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	var err error
	if app != "" || len(opts.Mounts) == 0 { // with --mount, the app at / is optional
		if app, err = ParseAppSpec(app); err != nil {
			return nil, err
		}
	}
	s := &Server{opts: opts, app: app, errorLog: errorLogger(opts.ErrorLog), metrics: newMetrics(), serveErr: make(chan error, 8), done: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			s.cleanup()
		}
	}()
	if opts.Store != nil {
		s.store = opts.Store
	} else {
		so := state.Options{MaxBytes: opts.StateMaxBytes, MaxValueBytes: opts.StateMaxValueBytes}
		// Workers cache state_get results against a shared change table
		// (versions_linux.go), except when the store evicts by recency:
		// reads served from a worker's memory would not count as use.
		if opts.StateMaxBytes <= 0 {
			if v, verr := newVersions(); verr == nil {
				s.versions = v
				so.OnChange = v.changed
			}
		}
		s.ownStore = state.NewMemory(so)
		s.store = s.ownStore
	}
	allow := opts.ForwardedAllowIPs
	if allow == nil {
		allow = proxy.DefaultAllow
	}
	if s.trust, err = proxy.NewTrust(allow); err != nil {
		return nil, fmt.Errorf("--forwarded-allow-ips: %w", err)
	}
	s.trust.ForwardedHost = opts.ForwardedHost
	if err := s.listen(); err != nil {
		return nil, err
	}
	if s.runtimeDir, err = python.Unpack(); err != nil {
		return nil, err
	}
	if opts.WorkerUser != nil {
		os.Chmod(s.runtimeDir, 0o755) // the workers import from it after switching user
	}
	var embedded *pool.Embedded
	if opts.WorkerMode == ModeEmbedded {
		if embedded, err = s.embeddedPool(); err != nil {
			return nil, fmt.Errorf("--worker-mode embedded: %w", err)
		}
	}
	s.pool, err = pool.New(pool.Config{
		Python: opts.Python, App: app, Workers: opts.Workers, Threads: opts.Threads,
		PythonPath: opts.PythonPath, MaxRequests: opts.MaxRequests, MaxRequestsJitter: opts.MaxRequestsJitter,
		RuntimeDir: s.runtimeDir, ErrorLog: s.errorLog, StateCall: s.stateCall, Preload: opts.Preload,
		MaxWorkerMemory: opts.MaxWorkerMemory, CPUAffinity: opts.CPUAffinity, StateVersions: s.versionsFile(),
		GracefulTimeout: opts.GracefulTimeout, Embedded: embedded, Env: workerEnv(opts.WorkerUser),
		AbortFirst: opts.WorkerAbortHook,
	})
	if err != nil {
		return nil, err
	}
	var front *frontend // in the embedded mode the workers serve the listeners themselves
	if embedded == nil {
		s.mode = ModeProcess + " mode"
		if why != "" {
			s.mode += " (" + why + ")"
		}
		h := &wsgi.Handler{
			Pool: s.pool, Timeout: max(opts.Timeout, 0), MaxBodySize: max(opts.MaxBodySize, 0), BodyTimeout: max(opts.BodyTimeout, 0),
			ErrorLog: s.errorLog, Observe: s.metrics.observe, SpoolThreshold: opts.SpoolThreshold,
		}
		if front, err = newFrontend(&s.opts, s.trust, h, s.errorLog, s.pool.Ready); err != nil {
			return nil, err
		}
		s.http = front.http
	}
	if opts.StatsBind != "" {
		if err := s.startStats(); err != nil {
			return nil, err
		}
	}
	// Every setting is checked; now the workers import the app (which may
	// take a while), and only then do the listeners serve.
	if err := s.pool.Start(ctx); err != nil {
		return nil, err
	}
	for _, ln := range s.listeners {
		if front == nil {
			break
		}
		go func(ln net.Listener) {
			err := s.http.Serve(ln)
			if !errors.Is(err, http.ErrServerClosed) {
				s.serveErr <- err
			}
		}(front.listener(ln))
	}
	if opts.ReloadOnChange {
		go s.watchPython(context.Background(), time.Second)
	}
	ok = true
	return s, nil
}

// Mode describes how the workers run, for the start-up line: "process
// mode", or the embedded mode and whether the interpreter hosts the worker
// library or libpython is loaded into the hornbeam binary ("embedded mode:
// /usr/bin/python3 hosts /opt/hornbeam/hornbeam-worker.so").
func (s *Server) Mode() string { return s.mode }

// Check imports app in one worker process, as Start would, without
// serving: nil if it loads, else the error (a *pool.StartError carries the
// Python traceback). In the embedded mode (ASGI, --mount) the worker also
// runs the lifespan startups.
func Check(ctx context.Context, app string, opts Options) error {
	opts.defaults()
	opts.chooseMode()
	if opts.WorkerMode == ModeEmbedded {
		// One embedded worker on a loopback port of its own: it imports
		// every app and runs the ASGI lifespan startups, as serving would.
		o := opts
		o.Bind, o.Listeners, o.Workers = []string{"127.0.0.1:0"}, nil, 1
		o.StatsBind, o.HealthPath, o.ReloadOnChange, o.AccessLog = "", "", false, nil
		s, err := Start(ctx, app, o)
		if err != nil {
			return err
		}
		return s.Stop(ctx)
	}
	app, err := ParseAppSpec(app)
	if err != nil {
		return err
	}
	dir, err := python.Unpack()
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p, err := pool.New(pool.Config{
		Python: opts.Python, App: app, Workers: 1, Threads: 1, PythonPath: opts.PythonPath,
		RuntimeDir: dir, ErrorLog: errorLogger(opts.ErrorLog),
	})
	if err != nil {
		return err
	}
	if err := p.Start(ctx); err != nil {
		return err
	}
	return p.Stop(ctx)
}

// ConfigError is a setting that cannot work, found by Options.Validate
// before anything is opened (Start returns it too). Its message names the
// setting as its flag (--bind, --static, ...). The command exits 2 on it.
type ConfigError struct {
	Setting string // the flag, like "--bind"
	Err     error
}

func (e *ConfigError) Error() string { return e.Setting + ": " + e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// Validate checks the options as Start would, without binding or starting
// anything: bind addresses' syntax, counts that must not be negative, the
// health path, static mappings (and that their directories exist), the
// trusted proxy list, the access log format and the TLS files. It returns
// a *ConfigError for the first setting that cannot work.
func (o Options) Validate() error {
	o.defaults()
	bad := func(setting, format string, args ...any) error {
		return &ConfigError{Setting: setting, Err: fmt.Errorf(format, args...)}
	}
	for _, b := range o.Bind {
		if err := checkBind(b); err != nil {
			return &ConfigError{Setting: "--bind", Err: err}
		}
	}
	if o.StatsBind != "" {
		if err := checkBind(o.StatsBind); err != nil {
			return &ConfigError{Setting: "--stats-bind", Err: err}
		}
	}
	for _, c := range []struct {
		setting string
		n       int64
	}{
		{"--workers", int64(o.Workers)}, {"--threads", int64(o.Threads)}, {"--max-requests", int64(o.MaxRequests)},
		{"--max-requests-jitter", int64(o.MaxRequestsJitter)}, {"--limit-request-line", int64(o.LimitRequestLine)},
		{"--limit-request-fields", int64(o.LimitRequestFields)}, {"--limit-request-field-size", int64(o.LimitRequestFieldSize)},
		{"--max-worker-memory", o.MaxWorkerMemory}, {"--state-max-bytes", o.StateMaxBytes}, {"--state-max-value-bytes", int64(o.StateMaxValueBytes)},
	} {
		if c.n < 0 {
			return bad(c.setting, "must not be negative (got %d)", c.n)
		}
	}
	if o.WorkerMode != "" && o.WorkerMode != ModeProcess && o.WorkerMode != ModeEmbedded {
		return bad("--worker-mode", "%q: want %s or %s", o.WorkerMode, ModeProcess, ModeEmbedded)
	}
	switch o.Interface {
	case "", "wsgi", "asgi":
	default:
		return bad("--worker-class", "%q: want wsgi or asgi", o.Interface)
	}
	if _, err := ParseMounts(o.Mounts, ""); err != nil {
		return bad("--mount", "%v", err)
	}
	if len(o.Mounts) > 0 && o.WorkerMode == ModeProcess {
		return bad("--mount", "mounts run only in the embedded worker mode: drop --worker-mode process (or use --worker-mode embedded)")
	}
	if o.Interface == "asgi" && o.WorkerMode == ModeProcess {
		return bad("--worker-class", "asgi runs only in the embedded worker mode: drop --worker-mode process (or use --worker-mode embedded)")
	}
	switch o.Lifespan {
	case "", "auto", "on", "off":
	default:
		return bad("--lifespan", "%q: want auto, on or off", o.Lifespan)
	}
	if o.WSMaxMessageSize < 0 {
		return bad("--ws-max-message-size", "must not be negative (got %d)", o.WSMaxMessageSize)
	}
	if o.HealthPath != "" && !strings.HasPrefix(o.HealthPath, "/") {
		return bad("--health-path", "%q must start with '/', like /healthz", o.HealthPath)
	}
	for _, m := range o.Static {
		prefix, dir, err := static.ParseMapping(m)
		if err == nil {
			_, err = static.New(prefix, dir)
		}
		if err != nil {
			return &ConfigError{Setting: "--static", Err: err}
		}
	}
	if o.ForwardedAllowIPs != nil {
		if _, err := proxy.NewTrust(o.ForwardedAllowIPs); err != nil {
			return &ConfigError{Setting: "--forwarded-allow-ips", Err: err}
		}
	}
	if _, err := accesslog.New(io.Discard, o.AccessLogFormat, o.AccessLogJSON); err != nil {
		return &ConfigError{Setting: "--access-logformat", Err: err}
	}
	if o.KeyFile != "" && o.CertFile == "" {
		return bad("--certfile", "missing: --keyfile %s was given without the certificate (--certfile CERT.pem)", o.KeyFile)
	}
	if o.CertFile != "" {
		if _, err := loadCertificate(o.CertFile, o.KeyFile); err != nil {
			return err
		}
	}
	return o.validateExtras()
}

// checkBind checks the syntax of a bind address: HOST:PORT, :PORT or
// unix:/path.
func checkBind(b string) error {
	if path, ok := strings.CutPrefix(b, "unix:"); ok {
		if strings.TrimPrefix(path, "//") == "" {
			return fmt.Errorf("%q: want unix:/path/to/socket", b)
		}
		return nil
	}
	host, port, err := net.SplitHostPort(b)
	if err == nil && strings.ContainsAny(host, " \t/") {
		err = fmt.Errorf("bad host %q", host)
	}
	if err == nil {
		_, err = net.LookupPort("tcp", port)
	}
	if err != nil {
		return fmt.Errorf("%q: want HOST:PORT, :PORT or unix:/path (%v)", b, err)
	}
	return nil
}

// loadCertificate loads the TLS certificate and key. Without keyFile, the
// certificate's PEM file must hold the private key too.
func loadCertificate(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, &ConfigError{Setting: "--certfile", Err: err}
	}
	keyPEM, keySetting := certPEM, "--certfile"
	if keyFile != "" {
		if keyPEM, err = os.ReadFile(keyFile); err != nil {
			return tls.Certificate{}, &ConfigError{Setting: "--keyfile", Err: err}
		}
		keySetting = "--keyfile"
	} else if !hasPrivateKey(certPEM) {
		return tls.Certificate{}, &ConfigError{Setting: "--keyfile", Err: fmt.Errorf("missing: --certfile %s holds no private key; give the key with --keyfile KEY.pem (or put it in the same PEM file)", certFile)}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, &ConfigError{Setting: "--certfile/" + keySetting, Err: err}
	}
	return cert, nil
}

func hasPrivateKey(b []byte) bool {
	for {
		var block *pem.Block
		if block, b = pem.Decode(b); block == nil {
			return false
		}
		if strings.HasSuffix(block.Type, "PRIVATE KEY") {
			return true
		}
	}
}

// errorLogger is the *log.Logger the server logs through: its lines are
// stamped by an errlog.Writer (w itself when it is one, else one at the
// info level writing to w).
func errorLogger(w io.Writer) *log.Logger {
	ew, ok := w.(*errlog.Writer)
	if !ok {
		ew = errlog.New(w, errlog.Info)
	}
	return ew.Logger()
}

// Mount is one --mount: an app under a path prefix ("" is the root).
type Mount struct {
	Prefix, App string
}

// ParseMounts checks --mount values, "PREFIX=MODULE:CALLABLE", and
// returns them with app (the positional one, if not "") at the root
// unless a mount is there. A prefix starts with "/", has no trailing "/"
// (except "/" itself, the root) and appears once.
func ParseMounts(values []string, app string) ([]Mount, error) {
	var out []Mount
	seen := map[string]bool{}
	for _, v := range values {
		prefix, spec, ok := strings.Cut(v, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want PREFIX=MODULE:CALLABLE, like /api=api:app", v)
		}
		if !strings.HasPrefix(prefix, "/") || (len(prefix) > 1 && strings.HasSuffix(prefix, "/")) || strings.ContainsAny(prefix, "?#% ") {
			return nil, fmt.Errorf("%q: the prefix must start with / and not end with one (/api, or / for the root)", v)
		}
		if prefix == "/" {
			prefix = ""
		}
		if seen[prefix] {
			return nil, fmt.Errorf("%q: prefix %s is mounted twice", v, orRoot(prefix))
		}
		seen[prefix] = true
		s, err := ParseAppSpec(spec)
		if err != nil {
			return nil, fmt.Errorf("%q: %v", v, err)
		}
		out = append(out, Mount{Prefix: prefix, App: s})
	}
	if app != "" && len(out) > 0 && !seen[""] {
		out = append(out, Mount{App: app})
	}
	return out, nil
}

func orRoot(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

// ParseAppSpec checks "module:callable" and fills in the default callable
// "application". As with gunicorn 21+, the callable may be a factory call
// with literal arguments, "module:create_app()" or
// "module:create_app('prod', debug=False)": the workers parse it with
// Python's ast and call it once each; here it is checked to be a dotted
// name followed by a parenthesised list of literals.
func ParseAppSpec(spec string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("bad app %q: %swant MODULE:CALLABLE, like myproject.wsgi:application, or MODULE:FACTORY(ARGS) with literal arguments, like app:create_app()", spec, why)
	}
	mod, name, found := strings.Cut(spec, ":")
	if !found {
		name = "application"
	}
	call := ""
	if i := strings.IndexByte(name, '('); i >= 0 {
		name, call = name[:i], name[i:]
		if !dottedName(name) {
			return bad("")
		}
		if err := literalCall(call); err != nil {
			return bad(err.Error() + "; ")
		}
	}
	if !dottedName(mod) || !dottedName(name) {
		return bad("")
	}
	return mod + ":" + name + call, nil
}

// literalCall checks that s is "(ARGS)", ARGS being Python literals
// (strings, numbers, True, False, None, and tuples, lists, dicts and sets
// of them), positional then NAME=literal, with no name or call in them.
// It is a coarse check of the tokens; Python's ast.literal_eval decides.
func literalCall(s string) error {
	const notLiteral = "the factory's arguments must be Python literals (strings, numbers, True, False, None, lists, tuples, dicts)"
	if !utf8.ValidString(s) || !strings.HasSuffix(strings.TrimSpace(s), ")") {
		return errors.New("a call must end with ')'")
	}
	depth := 0
	var prev rune // the last significant token's first character: '(' , ',', '=' ...
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == ' ' || r == '\t':
			i += n
			continue
		case strings.ContainsRune("([{", r):
			if prev == 'a' || prev == ')' { // a call or a subscript: f(x), x[0]
				return errors.New(notLiteral)
			}
			depth++
		case strings.ContainsRune(")]}", r):
			depth--
			if depth < 0 {
				return errors.New("unbalanced parentheses")
			}
			if depth == 0 && strings.TrimSpace(s[i+n:]) != "" {
				return errors.New("text after the call's ')'")
			}
			r = ')'
		case r == '\'' || r == '"':
			j := i + 1
			for j < len(s) && s[j] != byte(r) {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return errors.New("unterminated string")
			}
			n, r = j+1-i, 'a'
		case r == ',' || r == ':' || r == '-' || r == '+':
		case r == '=':
			if prev != 'n' {
				return errors.New(notLiteral)
			}
		case r == '_' || r == '.' || unicode.IsLetter(r) || unicode.IsDigit(r):
			j := i
			for j < len(s) {
				c, m := utf8.DecodeRuneInString(s[j:])
				if !(c == '_' || c == '.' || unicode.IsLetter(c) || unicode.IsDigit(c)) {
					break
				}
				j += m
			}
			word := s[i:j]
			n = j - i
			switch {
			case word == "True" || word == "False" || word == "None":
				r = 'a'
			case unicode.IsDigit(r) || r == '.':
				r = 'a' // a number; Python checks its form
			case (prev == '(' || prev == ',') && dottedName(word) && !strings.Contains(word, ".") && strings.HasPrefix(strings.TrimLeft(s[j:], " \t"), "="):
				r = 'n' // a keyword argument's name
			case j < len(s) && (s[j] == '\'' || s[j] == '"') && strings.Contains(" b r u br rb ", " "+strings.ToLower(word)+" "):
				r = 'p' // a string prefix: b'', r'', u''
			default:
				return fmt.Errorf("%s, not %q", notLiteral, word)
			}
		default:
			return errors.New(notLiteral)
		}
		if r == 'p' {
			prev = 'p'
		} else {
			prev = r
		}
		i += n
	}
	if depth != 0 {
		return errors.New("unbalanced parentheses")
	}
	return nil
}

func dottedName(s string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	for _, part := range strings.Split(s, ".") {
		for i, r := range part {
			ok := r == '_' || unicode.IsLetter(r) || (i > 0 && (unicode.IsDigit(r) || unicode.In(r, unicode.Mn, unicode.Mc)))
			if !ok {
				return false
			}
		}
		if part == "" {
			return false
		}
	}
	return true
}

func (s *Server) listen() error {
	s.listeners = append(s.listeners, s.opts.Listeners...)
	for _, b := range s.opts.Bind {
		ln, err := Listen(b)
		if err != nil {
			return err
		}
		s.listeners = append(s.listeners, ln)
		if path, ok := strings.CutPrefix(b, "unix:"); ok && s.opts.UnixSocketMode != 0 {
			if err := os.Chmod(path, s.opts.UnixSocketMode); err != nil {
				return fmt.Errorf("setting the mode of %s: %w", path, err)
			}
		}
	}
	return nil
}

// Listen opens a listener for a bind address: "HOST:PORT", ":PORT" or
// "unix:/path" (a stale socket file at path is replaced).
func Listen(bind string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(bind, "unix:"); ok {
		if fi, err := os.Stat(path); err == nil && fi.Mode()&fs.ModeSocket != 0 {
			if c, err := net.Dial("unix", path); err == nil {
				c.Close()
				return nil, fmt.Errorf("cannot bind %s: another server is listening there", bind)
			}
			os.Remove(path)
		}
		ln, err := net.Listen("unix", path)
		if err != nil {
			return nil, fmt.Errorf("cannot bind %s: %w", bind, err)
		}
		return ln, nil
	}
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("cannot bind %s: the address is already in use (is another server running? choose another --bind)", bind)
		}
		return nil, fmt.Errorf("cannot bind %s: %w", bind, err)
	}
	return ln, nil
}

// Addrs returns the addresses the server listens on.
func (s *Server) Addrs() []net.Addr {
	out := make([]net.Addr, len(s.listeners))
	for i, ln := range s.listeners {
		out[i] = ln.Addr()
	}
	return out
}

// StatsAddr returns the stats endpoint's address, or nil.
func (s *Server) StatsAddr() net.Addr {
	if s.statsLn == nil {
		return nil
	}
	return s.statsLn.Addr()
}

// Err delivers an error if a listener fails while serving.
func (s *Server) Err() <-chan error { return s.serveErr }

// Done is closed once the server has stopped.
func (s *Server) Done() <-chan struct{} { return s.done }

// Stop stops accepting connections, lets in-flight requests finish until
// ctx ends (then cuts them), stops the workers and releases everything.
// It is safe to call more than once.
func (s *Server) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		var err error
		if s.http != nil {
			if err = s.http.Shutdown(ctx); err != nil {
				s.http.Close()
			}
		}
		if perr := s.pool.Stop(ctx); err == nil {
			err = perr
		}
		s.cleanup()
		s.stopErr = err
		close(s.done)
	})
	return s.stopErr
}

func (s *Server) cleanup() {
	if s.statsSrv != nil {
		s.statsSrv.Close()
	}
	for _, ln := range s.listeners {
		ln.Close()
	}
	if s.pool != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		s.pool.Stop(ctx)
		cancel()
	}
	if s.ownStore != nil {
		s.ownStore.Close()
	}
	if s.versions != nil {
		s.versions.close()
	}
	if s.balance != nil {
		s.balance.Close()
	}
	if s.runtimeDir != "" {
		os.RemoveAll(s.runtimeDir)
	}
}

// Reload replaces the workers with ones running freshly imported code, with
// no request dropped; if the new code fails to import, the old workers keep
// serving and the error is returned.
func (s *Server) Reload(ctx context.Context) error { return s.pool.Reload(ctx) }

// Scale adds or retires workers; it returns the new number wanted.
func (s *Server) Scale(ctx context.Context, delta int) (int, error) { return s.pool.Scale(ctx, delta) }

// Pool returns the server's worker pool.
func (s *Server) Pool() *pool.Pool { return s.pool }

// filteredLog drops net/http's noise about clients that hang up.
type filteredLog struct{ l *log.Logger }

func (f *filteredLog) Write(b []byte) (int, error) {
	msg := string(b)
	if strings.Contains(msg, "TLS handshake error") && strings.Contains(msg, "EOF") {
		return len(b), nil
	}
	f.l.Print(errlog.WarningPrefix + strings.TrimRight(msg, "\n"))
	return len(b), nil
}
