package hornbeam

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/hornbeam-go/hornbeam/internal/cpython"
	"github.com/hornbeam-go/hornbeam/pool"
	"github.com/hornbeam-go/hornbeam/proxy"
	"github.com/hornbeam-go/hornbeam/worker"
)

// Worker modes (Options.WorkerMode).
const (
	// ModeProcess runs the app in Python worker processes fed requests
	// over a socket by this process, which serves HTTP (the first design;
	// any CPython 3.8+).
	ModeProcess = "process"
	// ModeEmbedded runs the app in worker processes that are this binary
	// with CPython loaded in process: each serves HTTP itself on the
	// listeners it inherits and calls the app directly (package worker).
	// It needs an interpreter with a shared libpython.
	ModeEmbedded = "embedded"
)

// frontOptions are the settings an embedded worker's HTTP front needs: the
// Options fields that package worker passes through as JSON (the body
// limits and the timeout are worker.Config's: its handler applies them).
type frontOptions struct {
	Keepalive             time.Duration
	AccessLog             bool // lines go to worker.FDAccessLog, a pipe the server copies to its access log
	AccessLogFormat       string
	AccessLogJSON         bool
	ForwardedAllowIPs     []string
	ForwardedHost         bool
	ProxyProtocol         bool
	Static                []string
	ReadHeaderTimeout     time.Duration
	LimitRequestLine      int
	LimitRequestFields    int
	LimitRequestFieldSize int
	HealthPath            string
	CertFile, KeyFile     string
	ClientCAFile          string
	ClientAuth            tls.ClientAuthType
	CipherSuites          []uint16
}

// embeddedPool returns the pool configuration of the embedded mode, or an
// error saying why this interpreter cannot be embedded.
func (s *Server) embeddedPool() (*pool.Embedded, error) {
	o := &s.opts
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("embedded workers: finding the hornbeam binary: %w", err)
	}
	lib, err := workerLibrary(o.WorkerLibrary, exe)
	if err != nil {
		return nil, err
	}
	var (
		inst *cpython.Install
		args []string
	)
	if lib != "" {
		// The interpreter hosts the worker: no shared libpython needed.
		if inst, err = cpython.Probe(o.Python); err != nil {
			return nil, err
		}
		exe, args = o.Python, worker.HostedArgs(lib, s.runtimeDir)
		s.mode = fmt.Sprintf("%s mode: %s hosts %s", ModeEmbedded, inst.Executable, lib)
	} else {
		if o.WorkerUser != nil {
			return nil, &ConfigError{Setting: "--user", Err: fmt.Errorf("the embedded workers switch user only as python3 hosting %s (build it beside the binary, see README \"Quick start\"): or start hornbeam as that user (systemd User=, docker --user), or use the process mode", worker.LibraryName)}
		}
		if inst, err = cpython.Find(o.Python); err != nil {
			if cpython.IsNoSharedLib(err) {
				err = fmt.Errorf("%w; or build %s beside the hornbeam binary, which needs none: go build -buildmode=c-shared -o %s ./cmd/hornbeam-worker", err, worker.LibraryName, filepath.Join(filepath.Dir(exe), worker.LibraryName))
			}
			return nil, err
		}
		s.mode = fmt.Sprintf("%s mode: %s loaded", ModeEmbedded, inst.Library)
	}
	files, err := s.ListenerFiles() // kept open: every worker started inherits them
	if err != nil {
		return nil, fmt.Errorf("embedded workers: %w", err)
	}
	front, err := json.Marshal(frontOptions{
		Keepalive: o.Keepalive, AccessLog: o.AccessLog != nil, AccessLogFormat: o.AccessLogFormat,
		AccessLogJSON: o.AccessLogJSON, ForwardedAllowIPs: o.ForwardedAllowIPs, ForwardedHost: o.ForwardedHost,
		ProxyProtocol: o.ProxyProtocol, Static: o.Static,
		ReadHeaderTimeout: o.ReadHeaderTimeout, LimitRequestLine: o.LimitRequestLine, LimitRequestFields: o.LimitRequestFields,
		LimitRequestFieldSize: o.LimitRequestFieldSize, HealthPath: o.HealthPath,
		CertFile: o.CertFile, KeyFile: o.KeyFile,
		ClientCAFile: o.ClientCAFile, ClientAuth: o.ClientAuth, CipherSuites: o.CipherSuites,
	})
	if err != nil {
		return nil, err
	}
	timeout := max(o.Timeout, 0)
	ms, err := ParseMounts(o.Mounts, s.app)
	if err != nil {
		return nil, err
	}
	var mounts []worker.Mount
	for _, m := range ms {
		mounts = append(mounts, worker.Mount{Prefix: m.Prefix, App: m.App})
	}
	build := worker.BuildID()
	// The balance table: the workers open it through /proc (a worker that
	// switched user cannot, and falls back to a fixed backoff).
	balancePath := ""
	balance, err := memfd("hornbeam-balance", worker.BalanceEntries*4)
	if err == nil {
		s.balance = balance
		balancePath = fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), balance.Fd())
	}
	return &pool.Embedded{
		Executable: exe, Args: args, Library: lib,
		Listeners: files,
		AccessLog: o.AccessLog,
		Observe:   s.metrics.observe,
		// With no worker that can serve, the server answers 503 itself.
		Unavailable: (&fallback{s: s}).set,
		Balance:     balance,
		Env: func(limit, cpu, slot int) []string {
			cfg, _ := json.Marshal(worker.Config{
				Python: inst.Executable, App: s.app, PythonPath: o.PythonPath, Threads: o.Threads,
				Listeners: len(files), MaxRequests: limit, Timeout: timeout, CPU: cpu,
				MaxBodySize: max(o.MaxBodySize, 0), SpoolThreshold: o.SpoolThreshold, BodyTimeout: max(o.BodyTimeout, 0),
				GracefulTimeout: o.GracefulTimeout, StateVersions: s.versions != nil, Front: front,
				Mounts:    mounts,
				Interface: o.Interface, Lifespan: o.Lifespan, WSPingInterval: o.WSPingInterval,
				WSPingTimeout: o.WSPingTimeout, WSMaxMessage: o.WSMaxMessageSize, WSDeflate: o.WSDeflate,
				Build: build, Balance: balancePath, Slot: slot,
			})
			return []string{worker.EnvConfig + "=" + string(cfg)}
		},
	}, nil
}

// chooseMode settles a WorkerMode left empty (after defaults, which make
// ASGI apps and mounts embedded): the embedded mode when the worker library
// is found, the hosted workers being the fastest (README "Performance":
// ahead of the process mode on every workload, where libpython loaded
// into the binary is behind it on Flask), else the process mode. It
// returns why it chose the process mode, or "". (gunicorn.conf.py's worker
// hooks, which only the process mode calls, are cmd/hornbeam's to weigh.)
func (o *Options) chooseMode() string {
	if o.WorkerMode != "" {
		return ""
	}
	o.WorkerMode = ModeProcess
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	switch lib, err := workerLibrary(o.WorkerLibrary, exe); {
	case err != nil:
		o.WorkerMode = ModeEmbedded // Start says what is missing
		return ""
	case lib == "" && o.WorkerLibrary == "-":
		return ""
	case lib == "":
		return "no " + worker.LibraryName + " beside the binary for embedded workers"
	}
	o.WorkerMode = ModeEmbedded
	return ""
}

// workerLibrary returns the worker library (cmd/hornbeam-worker) the
// embedded workers' interpreter is to host: opt (Options.WorkerLibrary)
// when set, else worker.LibraryName beside the hornbeam binary exe if it is
// there; "" to load libpython instead (opt "-", or no library found).
func workerLibrary(opt, exe string) (string, error) {
	switch opt {
	case "-":
		return "", nil
	case "":
		p := filepath.Join(filepath.Dir(exe), worker.LibraryName)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
		return "", nil
	}
	p, err := filepath.Abs(opt)
	if err != nil {
		return "", err
	}
	if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
		return "", fmt.Errorf("the worker library %s is not there: build it with go build -buildmode=c-shared -o %s ./cmd/hornbeam-worker", opt, opt)
	}
	return p, nil
}

// fallback serves the listeners from the server process while the
// embedded mode has no worker that can (the pool's Unavailable: the app
// does not start, so a worker's restart failed): every request, and
// --health-path, gets 503 at once instead of waiting in the listen backlog
// for a worker that may never come. It stops when a worker is ready.
type fallback struct {
	s   *Server
	srv *http.Server // serving now; nil: not
}

func (f *fallback) set(down bool) {
	if !down {
		if f.srv != nil {
			// Stop accepting (the workers take the connections), answer
			// what was read, close the rest.
			f.srv.SetKeepAlivesEnabled(false)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			if f.srv.Shutdown(ctx) != nil {
				f.srv.Close()
			}
			cancel()
			f.srv = nil
		}
		return
	}
	if f.srv != nil {
		return
	}
	unavailable := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		w.Header().Set("Retry-After", "1")
		http.Error(w, "Service Unavailable: no worker is running (the app does not start; see the error log)", http.StatusServiceUnavailable)
	})
	front, err := newFrontend(&f.s.opts, f.s.trust, unavailable, f.s.errorLog, func() int { return 0 })
	if err != nil {
		f.s.errorLog.Printf("error: answering 503 while no worker runs: %v", err)
		return
	}
	// The pool's copies of the listening sockets: net.FileListener calls
	// Fd, which leaves them non-blocking (see pool.inheritable).
	for _, file := range f.s.pool.Config().Embedded.Listeners {
		ln, err := net.FileListener(file)
		if err != nil {
			f.s.errorLog.Printf("error: answering 503 while no worker runs: %v", err)
			continue
		}
		go front.http.Serve(front.listener(ln))
	}
	f.srv = front.http
	f.s.errorLog.Printf("warning: no worker is running: the server answers 503 until one is")
}

// WorkerMain runs this process as an embedded worker and returns its exit
// status; the hornbeam command calls it first thing when the environment
// says it is one (worker.EnvConfig).
func WorkerMain() int { return worker.Main(workerFrontend) }

// workerFrontend builds an embedded worker's HTTP serving around app from
// the settings its server passed: the same handler chain, limits, guard,
// proxy trust and TLS as the process mode's.
func workerFrontend(raw json.RawMessage, app http.Handler, errorLog *log.Logger) (*http.Server, func(net.Listener) net.Listener, error) {
	var fo frontOptions
	if err := json.Unmarshal(raw, &fo); err != nil {
		return nil, nil, fmt.Errorf("bad front settings: %w", err)
	}
	opts := Options{
		Keepalive: fo.Keepalive, AccessLogFormat: fo.AccessLogFormat, AccessLogJSON: fo.AccessLogJSON,
		ForwardedAllowIPs: fo.ForwardedAllowIPs, ForwardedHost: fo.ForwardedHost, ProxyProtocol: fo.ProxyProtocol,
		Static:            fo.Static,
		ReadHeaderTimeout: fo.ReadHeaderTimeout, LimitRequestLine: fo.LimitRequestLine,
		LimitRequestFields: fo.LimitRequestFields, LimitRequestFieldSize: fo.LimitRequestFieldSize,
		HealthPath: fo.HealthPath, CertFile: fo.CertFile, KeyFile: fo.KeyFile,
		ClientCAFile: fo.ClientCAFile, ClientAuth: fo.ClientAuth, CipherSuites: fo.CipherSuites,
		Bind: []string{"-"}, // not used: the listeners are inherited
	}
	if fo.AccessLog {
		opts.AccessLog = os.NewFile(worker.FDAccessLog, "hornbeam-access-log")
	}
	opts.defaults()
	allow := opts.ForwardedAllowIPs
	if allow == nil {
		allow = proxy.DefaultAllow
	}
	trust, err := proxy.NewTrust(allow)
	if err != nil {
		return nil, nil, err
	}
	trust.ForwardedHost = opts.ForwardedHost
	f, err := newFrontend(&opts, trust, app, errorLog, func() int { return 1 })
	if err != nil {
		return nil, nil, err
	}
	return f.http, f.listener, nil
}
