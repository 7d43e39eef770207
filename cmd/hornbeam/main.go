// Command hornbeam serves a Python WSGI application.
//
//	hornbeam [flags] MODULE:CALLABLE
//
// Every flag can also be set with an environment variable HORNBEAM_<FLAG>
// (upper case, dashes as underscores); a flag on the command line wins.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/hornbeam-go/hornbeam"
	"github.com/hornbeam-go/hornbeam/accesslog"
	"github.com/hornbeam-go/hornbeam/errlog"
	"github.com/hornbeam-go/hornbeam/pool"
	"github.com/hornbeam-go/hornbeam/proxy"
	"github.com/hornbeam-go/hornbeam/top"
	"github.com/hornbeam-go/hornbeam/worker"
)

func main() {
	if os.Getenv(worker.EnvConfig) != "" {
		// Started by a hornbeam server as one of its embedded workers.
		os.Exit(hornbeam.WorkerMain())
	}
	if os.Getenv("GOGC") == "" {
		// The server's live heap is a few MB, so the default (GOGC=100)
		// collects hundreds of times a second under load; profiles showed
		// about a tenth of the Go side's CPU in the collector. A larger
		// factor trades a few MB for that CPU.
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMAXPROCS") == "" {
		// The Go front shares the machine with the Python workers: give it
		// half the CPUs (the runtime's default already follows cgroup
		// limits). On 2 cores this measured 15-25% more requests/s than
		// letting Go schedule on both (hello world and 64 KB, wrk -c64).
		runtime.GOMAXPROCS(max(1, runtime.GOMAXPROCS(0)/2))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// duration is a flag value: a Go duration ("30s", "1m30s") or a bare number
// of seconds ("30", "0.5").
type duration struct{ d *time.Duration }

func (v duration) String() string { return v.d.String() }
func (v duration) Type() string   { return "duration" }
func (v duration) Set(s string) error {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if !(f >= 0 && f < float64(math.MaxInt64)/float64(time.Second)) {
			return fmt.Errorf("want a duration like 30s, 1m or a number of seconds, not negative")
		}
		*v.d = time.Duration(f * float64(time.Second))
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return fmt.Errorf("want a duration like 30s, 1m or a number of seconds, not negative")
	}
	*v.d = d
	return nil
}

// size is a flag value: bytes, with an optional unit (512M, 1G, 64KiB).
type size struct{ n *int64 }

func (v size) String() string { return strconv.FormatInt(*v.n, 10) }
func (v size) Type() string   { return "bytes" }
func (v size) Set(s string) error {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = num, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		return fmt.Errorf("want a number of bytes, optionally with K, M or G")
	}
	*v.n = n * mult
	return nil
}

type config struct {
	opts        hornbeam.Options
	workerClass string
	venv        string
	accessLog   string
	errorLog    string
	version     bool
	umask       string
	configFile  string
	printConfig bool
	logLevel    string
	checkConfig bool
	chdir       string
	pidFile     string
	procName    string
	env         []string
	reloadExtra []string
	refused     []string // gunicorn options given that hornbeam refuses: one line each
	ignored     []string // gunicorn options given that have no effect here: one warning each
	gconf       *gunConf // the gunicorn.conf.py read, if any (gunconf.go)
	ciphers     string   // --ciphers, as given (gunconf_tls.go)
	user, group string   // -u/--user, -g/--group, as given
	initgroups  bool
}

func flags(c *config) *pflag.FlagSet {
	fs := pflag.NewFlagSet("hornbeam", pflag.ContinueOnError)
	fs.SortFlags = false
	o := &c.opts
	*o = hornbeam.Options{Workers: 4, Threads: 1, Timeout: 30 * time.Second, Keepalive: 2 * time.Second,
		GracefulTimeout: 30 * time.Second, MaxRequests: 0, Python: "python3", ReadHeaderTimeout: 10 * time.Second, BodyTimeout: 30 * time.Second,
		MaxBodySize: 1 << 30, LimitRequestLine: 4094, LimitRequestFields: 100, LimitRequestFieldSize: 8190,
		WSPingInterval: 20 * time.Second, WSPingTimeout: 20 * time.Second, WSMaxMessageSize: 16 << 20}
	fs.StringSliceVarP(&o.Bind, "bind", "b", []string{"127.0.0.1:8000"}, "address to listen on, HOST:PORT or unix:/path (repeatable)")
	fs.IntVarP(&o.Workers, "workers", "w", o.Workers, "Python worker processes")
	fs.StringVarP(&c.workerClass, "worker-class", "k", "", "application interface: wsgi (gunicorn's sync and gthread are names for it) or asgi; default: asgi for an async app in the embedded mode, else wsgi")
	fs.IntVar(&o.Threads, "threads", o.Threads, "concurrent requests per worker")
	fs.StringVar(&o.WorkerMode, "worker-mode", "", "process: Python workers fed by this process; embedded: workers that serve HTTP with CPython in process (python3 hosting hornbeam-worker.so if it is beside this binary, else a shared libpython loaded); default: embedded with hornbeam-worker.so or -k asgi, else process")
	fs.StringArrayVar(&o.Mounts, "mount", nil, "serve an app under a path prefix, PREFIX=MODULE:CALLABLE (repeatable; WSGI and ASGI apps side by side, longest prefix first; embedded mode; the positional app, if any, is at /)")
	fs.StringVar(&o.Lifespan, "lifespan", "auto", "ASGI lifespan: auto (run it if the app supports it), on (a startup failure stops the server), off")
	fs.Var(duration{&o.WSPingInterval}, "ws-ping-interval", "ping each WebSocket this often (0: never)")
	fs.Var(duration{&o.WSPingTimeout}, "ws-ping-timeout", "close a WebSocket whose pong takes longer than this")
	fs.BoolVar(&o.WSDeflate, "ws-per-message-deflate", false, "offer WebSocket compression (permessage-deflate, no context takeover); --ws-max-message-size bounds the inflated size")
	fs.Var(size{&o.WSMaxMessageSize}, "ws-max-message-size", "largest WebSocket message taken, bytes or with K/M/G (close 1009 beyond)")
	fs.VarP(duration{&o.Timeout}, "timeout", "t", "per-request timeout: past it the client gets 504 and the worker is replaced (0: none)")
	fs.IntVar(&o.MaxRequests, "max-requests", o.MaxRequests, "recycle a worker after this many requests (default 0: never; for an app that leaks, e.g. 1000)")
	fs.IntVar(&o.MaxRequestsJitter, "max-requests-jitter", 0, "add a random 0..N to --max-requests per worker")
	fs.Var(duration{&o.Keepalive}, "keepalive", "how long an idle keep-alive connection stays open")
	fs.StringSliceVar(&o.PythonPath, "pythonpath", []string{"."}, "directories put in front of sys.path (repeatable or comma-separated)")
	fs.BoolVar(&o.Preload, "preload", false, "import the app once, in a process that forks the workers (shared memory, fast restarts)")
	fs.BoolVar(&o.CPUAffinity, "cpu-affinity", false, "pin worker i, and the server thread answering its state calls, to CPU i (Linux; state calls about 2x faster; for a server that has the machine to itself)")
	fs.StringVar(&o.Python, "python", o.Python, "Python interpreter the workers run (Debian's packages: /usr/bin/python3)")
	fs.StringVar(&c.venv, "venv", "", "virtualenv to run the workers in (uses DIR/bin/python)")
	fs.StringVar(&c.chdir, "chdir", "", "change to this directory before starting: the workers' and the app's working directory (relative paths, --pythonpath . and the log files are then taken from there)")
	fs.StringArrayVarP(&c.env, "env", "e", nil, "KEY=VALUE set in the environment of the server and its workers (repeatable)")
	fs.StringVarP(&c.user, "user", "u", "", "run the workers as this user (name or uid; the server, started as root, keeps root to bind and manage them)")
	fs.StringVarP(&c.group, "group", "g", "", "run the workers with this group (name or gid; default: --user's primary group)")
	fs.BoolVar(&c.initgroups, "initgroups", false, "with --user, give the workers the user's supplementary groups too (default: none besides --group)")
	fs.StringVar(&o.CertFile, "certfile", "", "TLS certificate (PEM; the file may hold the private key too); enables HTTPS and HTTP/2")
	fs.StringVar(&o.KeyFile, "keyfile", "", "TLS private key (PEM), if not in --certfile's file")
	fs.StringVar(&o.ClientCAFile, "ca-certs", "", "CA bundle (PEM) that client certificates must chain to (mTLS, with --cert-reqs)")
	fs.Var(certReqs{&o.ClientAuth}, "cert-reqs", "client certificates: 0 or none (not asked for), 1 or optional (verified if sent), 2 or required")
	fs.StringVar(&c.ciphers, "ciphers", "", "TLS 1.2 cipher suites, OpenSSL or IANA names separated by colons (default: Go's; TLS 1.3 suites are always Go's)")
	fs.StringVar(&c.accessLog, "access-log", "", "access log file, - for stdout (default off); SIGUSR1 reopens it")
	fs.StringVar(&o.AccessLogFormat, "access-logformat", accesslog.DefaultFormat, "access log format with gunicorn's atoms: %(h)s %(r)s %(s)s %(D)s %({header}i)s ...")
	fs.BoolVar(&o.AccessLogJSON, "access-log-json", false, "write the access log as JSON lines")
	fs.StringVar(&c.errorLog, "error-log", "", "error log file, - for stdout (default stderr); SIGUSR1 reopens it")
	fs.StringVar(&c.logLevel, "log-level", "info", "least severe error log lines written: debug, info, warning or error (gunicorn's critical: error)")
	fs.Var(duration{&o.GracefulTimeout}, "graceful-timeout", "on SIGTERM/SIGINT, how long in-flight requests may take to finish (a second SIGINT or a SIGQUIT: stop at once)")
	fs.Var(duration{&o.ReadHeaderTimeout}, "read-header-timeout", "how long a client may take to send its request headers")
	fs.Var(duration{&o.BodyTimeout}, "body-timeout", "drop a request whose body stops arriving for this long (408)")
	fs.Var(size{&o.MaxBodySize}, "max-body-size", "largest request body, bytes or with K/M/G (413 beyond; 0: unlimited)")
	fs.IntVar(&o.LimitRequestLine, "limit-request-line", o.LimitRequestLine, "largest request line in bytes (414 beyond)")
	fs.IntVar(&o.LimitRequestFields, "limit-request-fields", o.LimitRequestFields, "most header fields in a request (431 beyond)")
	fs.IntVar(&o.LimitRequestFieldSize, "limit-request-field-size", o.LimitRequestFieldSize, "largest header field in bytes (431 beyond)")
	fs.Var(size{&o.MaxWorkerMemory}, "max-worker-memory", "recycle a worker gracefully once its RSS passes this, e.g. 512M (0: no bound)")
	fs.StringVar(&o.HealthPath, "health-path", "", "answer this path from Go: 200 while a worker is ready, 503 otherwise (default off)")
	fs.BoolVar(&o.ReloadOnChange, "reload", false, "restart the workers when a .py file under --pythonpath changes (development)")
	fs.StringArrayVar(&c.reloadExtra, "reload-extra-file", nil, "with --reload, also restart the workers when this file changes (repeatable)")
	fs.StringVarP(&c.umask, "umask", "m", "", "umask for unix socket binds, octal like 007 (default: the process umask)")
	fs.StringVarP(&c.pidFile, "pid", "p", "", "write the server's pid to this file, removed at exit")
	fs.StringVarP(&c.procName, "name", "n", "", "process name of the server in ps -e and top (Linux: 15 bytes)")
	fs.StringSliceVar(&o.ForwardedAllowIPs, "forwarded-allow-ips", proxy.DefaultAllow, "proxies trusted for Forwarded / X-Forwarded-* headers (and PROXY protocol): IPs, CIDRs or *; the client is the right-most X-Forwarded-For / Forwarded for= address not in this list (with *: the left-most)")
	fs.BoolVar(&o.ForwardedHost, "forwarded-host", false, "take the Host from a trusted proxy's X-Forwarded-Host / Forwarded host= (default: keep the request's Host header)")
	fs.BoolVar(&o.ProxyProtocol, "proxy-protocol", false, "accept PROXY protocol v1/v2 headers from trusted proxies")
	fs.StringArrayVar(&o.Static, "static", nil, "serve files from Go: URL_PREFIX=DIR, like /assets=./static (repeatable)")
	fs.StringVar(&o.StatsBind, "stats-bind", "", "serve GET /stats (JSON), /metrics (Prometheus) and /debug/pprof/ on this address (default off)")
	fs.Int64Var(&o.StateMaxBytes, "state-max-bytes", 0, "bound the shared state's memory, evicting expired then least recently used keys (0: unbounded)")
	fs.IntVar(&o.StateMaxValueBytes, "state-max-value-bytes", 64<<20, "largest single value in the shared state")
	fs.StringVarP(&c.configFile, "config", "c", "", "TOML file with settings named like the flags, or a gunicorn.conf.py (./gunicorn.conf.py is read when present and no --config is given) (precedence: flag > HORNBEAM_* env > file > default)")
	fs.BoolVar(&c.printConfig, "print-config", false, "print the effective configuration, and where each value came from, then exit")
	fs.BoolVar(&c.checkConfig, "check-config", false, "check the configuration and import the app, without serving: exit 0 (fine), 1 (the app does not import) or 2 (bad configuration), like hornbeam check")
	fs.BoolVarP(&c.version, "version", "v", false, "print the version and exit")
	gunicornFlags(fs, c)
	return fs
}

const usageHead = `Usage: hornbeam [flags] MODULE:CALLABLE
       hornbeam [flags] check MODULE:CALLABLE   (import the app, exit 0 or 1)
       hornbeam top [--once] [STATS_ADDR]        (watch a server started with --stats-bind)
       hornbeam help                             (this text)

Serves a Python WSGI application (CALLABLE defaults to "application").
Every flag can also come from HORNBEAM_<FLAG> (e.g. HORNBEAM_WORKERS=8); a flag wins.
Coming from gunicorn: its flag spellings work too (shown as "gunicorn: ..."), and
PORT, WEB_CONCURRENCY, GUNICORN_CMD_ARGS and SCRIPT_NAME are read as gunicorn
reads them (README.md: "Coming from gunicorn").
Exit status: 0 stopped as asked, 1 failed while running (port in use, the app
does not import), 2 a usage or configuration error.

Flags:
`

func usage(w io.Writer, fs *pflag.FlagSet) { fmt.Fprint(w, usageHead, fs.FlagUsages()) }

// usageError is a bad command line or configuration: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// validate checks the configuration as a real start would and returns the
// options to start with (the flags' own values are left as they are, for
// --print-config), the app, and whether this is `hornbeam check`. Every
// error it returns means exit status 2.
func (c *config) validate(args []string) (opts hornbeam.Options, app string, check bool, level errlog.Level, err error) {
	if len(c.refused) > 0 {
		return opts, "", false, 0, usagef("%s", strings.Join(c.refused, "\nhornbeam: "))
	}
	iface, err := workerClass(c.workerClass)
	if err != nil {
		return opts, "", false, 0, err
	}
	check = len(args) == 2 && args[0] == "check"
	switch {
	case len(args) == 1 && args[0] == "check":
		return opts, "", false, 0, usagef("give the application to check: hornbeam check MODULE:CALLABLE")
	case check || len(args) == 1:
		if app, err = hornbeam.ParseAppSpec(args[len(args)-1]); err != nil {
			return opts, "", false, 0, &usageError{err.Error()}
		}
	case len(args) == 0 && (c.printConfig || len(c.opts.Mounts) > 0):
	default:
		return opts, "", false, 0, usagef("give exactly one application, like: hornbeam myapp:application (see hornbeam --help)")
	}
	check = check || c.checkConfig
	lvl := c.logLevel
	if strings.EqualFold(strings.TrimSpace(lvl), "critical") {
		lvl = "error" // gunicorn's highest level; hornbeam's is error
	}
	if level, err = errlog.ParseLevel(lvl); err != nil {
		return opts, "", false, 0, usagef("--log-level: %v", err)
	}
	opts = c.opts
	opts.Interface = iface
	if opts.WSPingInterval == 0 {
		opts.WSPingInterval = -1 // the flag's 0 is never; the option's 0 is the default
	}
	opts.Bind = append([]string(nil), c.opts.Bind...)
	if opts.Workers < 1 || opts.Threads < 1 {
		return opts, "", false, 0, usagef("--workers and --threads must be at least 1 (got %d and %d)", opts.Workers, opts.Threads)
	}
	if c.venv != "" {
		opts.Python = filepath.Join(c.venv, "bin", "python")
	}
	if opts.Timeout == 0 {
		opts.Timeout = -1
	}
	if opts.BodyTimeout == 0 {
		opts.BodyTimeout = -1
	}
	if opts.MaxBodySize == 0 {
		opts.MaxBodySize = -1
	}
	if c.umask != "" {
		m, err := strconv.ParseUint(strings.TrimPrefix(c.umask, "0o"), 8, 32)
		if err != nil || m > 0o777 {
			return opts, "", false, 0, usagef("--umask %q: want an octal mask like 007", c.umask)
		}
		opts.UnixSocketMode = os.FileMode(0o777 &^ m)
	}
	if err := opts.Validate(); err != nil {
		return opts, "", false, 0, &usageError{err.Error()}
	}
	return opts, app, check, level, nil
}

// openLog opens a log destination: "" is def, "-" is stdout, anything
// else a file (returned as f too, so that SIGUSR1 can reopen it).
func openLog(path string, def io.Writer, stdout io.Writer) (w io.Writer, f *errlog.File, err error) {
	switch path {
	case "":
		return def, nil, nil
	case "-":
		return stdout, nil, nil
	}
	if f, err = errlog.OpenFile(path); err != nil {
		return nil, nil, err
	}
	return f, f, nil
}

// pythonVersion names the interpreter the workers run and its version,
// for the banner: "Python 3.11.2 at /usr/bin/python3".
func pythonVersion(python string) string {
	path, err := exec.LookPath(python)
	if err != nil {
		return "Python " + python + " (not found on PATH)"
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "-S", "-c", "import sys; print(sys.version.split()[0])").Output()
	if v := strings.TrimSpace(string(out)); err == nil && v != "" {
		return "Python " + v + " at " + path
	}
	return "Python (version unknown) at " + path
}

// importHint is the advice printed, once, when the app failed to import
// because a module is missing: usually the packages are installed for
// another interpreter than --python.
func importHint(err error, python string) string {
	var se *pool.StartError
	if !errors.As(err, &se) {
		return ""
	}
	out := strings.TrimRight(se.Output, "\n")
	last := out[strings.LastIndexByte(out, '\n')+1:]
	if !strings.HasPrefix(last, "ModuleNotFoundError") {
		return ""
	}
	return fmt.Sprintf("hint: the app is imported by %s; if the module is installed for another interpreter, pass --python (Debian's packages are seen by /usr/bin/python3), and add the app's directory with --pythonpath", python)
}

// addrURL is how the banner names a listening address.
func addrURL(a net.Addr, tls bool) string {
	switch a.Network() {
	case "tcp", "tcp4", "tcp6":
		if tls {
			return "https://" + a.String()
		}
		return "http://" + a.String()
	}
	return a.Network() + "://" + a.String()
}

func run(args []string, stdout, stderr io.Writer) int {
	var c config
	fs := flags(&c)
	fs.SetOutput(stderr)
	fs.Usage = func() { usage(stdout, fs) }
	if len(args) > 0 && args[0] == "top" {
		return top.Main(args[1:], os.Stdin, stdout, stderr)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "hornbeam: %v%s (see hornbeam --help)\n", err, suggest(fs, err))
		return 2
	}
	if fs.NArg() > 0 && fs.Arg(0) == "help" {
		usage(stdout, fs)
		return 0
	}
	src := commandLineSources(fs)
	positional := fs.Args()
	if envArgs, err := applyCmdArgsEnv(fs, &c, src); err != nil {
		fmt.Fprintf(stderr, "hornbeam: %v\n", err)
		return 2
	} else if len(positional) == 0 {
		positional = envArgs
	}
	if err := applyEnv(fs, src); err != nil {
		fmt.Fprintf(stderr, "hornbeam: %v\n", err)
		return 2
	}
	if fileApp, err := c.applyConfig(fs, src); err != nil {
		fmt.Fprintf(stderr, "hornbeam: %v\n", err)
		return 2
	} else if len(positional) == 0 && fileApp != "" {
		positional = []string{fileApp} // gunicorn.conf.py's wsgi_app
	}
	if err := applyPaaSEnv(fs, src); err != nil {
		fmt.Fprintf(stderr, "hornbeam: %v\n", err)
		return 2
	}
	if c.version {
		fmt.Fprintf(stdout, "hornbeam %s\n", hornbeam.Version)
		return 0
	}
	if err := c.processSettings(); err != nil {
		fmt.Fprintf(stderr, "hornbeam: %v\n", err)
		return 2
	}
	opts, app, check, level, err := c.validate(positional)
	if err != nil {
		fmt.Fprintf(stderr, "hornbeam: %v\n", err)
		return 2
	}
	if c.gconf != nil {
		if opts.WorkerMode == "" && opts.Interface != "asgi" && len(opts.Mounts) == 0 && c.gconf.workerSide() {
			// The worker hooks run in the process mode only: it is the
			// default mode's choice even with the worker library there.
			opts.WorkerMode = hornbeam.ModeProcess
		}
		c.ignored = append(c.ignored, c.gconf.hookWarnings(opts)...)
	}
	for _, line := range c.ignored {
		fmt.Fprintf(stderr, "hornbeam: %s\n", line)
	}
	if c.printConfig {
		printConfig(stdout, fs, src)
		c.gconf.printHooks(stdout)
		return 0
	}

	errOut, errFile, err := openLog(c.errorLog, stderr, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "hornbeam: --error-log: %v\n", err)
		return 2
	}
	elog := errlog.New(errOut, level)
	opts.ErrorLog = elog
	var accessFile *errlog.File
	if c.accessLog != "" {
		if opts.AccessLog, accessFile, err = openLog(c.accessLog, nil, stdout); err != nil {
			fmt.Fprintf(stderr, "hornbeam: --access-log: %v\n", err)
			return 2
		}
	}
	logf := elog.Logf
	// fail reports why the run failed: in the error log and, when that is
	// not stderr, on stderr too (with the worker's output, a traceback).
	fail := func(err error, python func() string) {
		var se *pool.StartError
		if errOut != stderr {
			if errors.As(err, &se) {
				fmt.Fprintf(stderr, "%s\n", strings.TrimRight(se.Output, "\n"))
			}
			fmt.Fprintf(stderr, "hornbeam: %v\n", err)
		}
		logf(errlog.Error, "%v", err)
		if hint := importHint(err, python()); hint != "" {
			logf(errlog.Error, "%s", hint)
			if errOut != stderr {
				fmt.Fprintln(stderr, hint)
			}
		}
	}

	// The operator's signals are ours from here on, before anything is
	// bound: a stop during boot ends it, a reload or scaling asked for
	// then is carried out once the workers are up.
	ctl := newControl(elog, []*errlog.File{errFile, accessFile})
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, operatorSignals...)
	defer signal.Stop(sigs)
	go ctl.loop(sigs)
	defer ctl.close()

	inherited, err := hornbeam.InheritedListeners()
	if err != nil {
		fail(err, func() string { return "" })
		return 1
	}
	if len(inherited) > 0 {
		opts.Listeners, opts.Bind = inherited, nil
	}
	pyInfo := make(chan string, 1)
	go func() { pyInfo <- pythonVersion(opts.Python) }()
	python := sync.OnceValue(func() string { return <-pyInfo })

	if err := setProcName(c.procName); err != nil {
		logf(errlog.Warning, "--name: cannot set the process name: %v", err)
	}
	if check {
		if err := hornbeam.Check(ctl.stopCtx, app, opts); err != nil {
			if ctl.stopCtx.Err() != nil {
				return 0
			}
			fail(err, python)
			return 1
		}
		what := app
		if len(opts.Mounts) > 0 {
			what = strings.Join(append(opts.Mounts, app), " ")
		}
		fmt.Fprintf(stdout, "hornbeam check: %s imports and is callable\n", strings.TrimSpace(what))
		return 0
	}
	pid, err := writePidFile(c.pidFile)
	if err != nil {
		fail(err, func() string { return "" })
		return 1
	}
	defer pid.remove()
	hooks := c.prepareHooks(opts, logf)
	opts.WorkerAbortHook = hooks != nil && c.gconf.defines("worker_abort")
	if err := hooks.run("on_starting"); err != nil {
		fail(err, python)
		return 1
	}
	defer hooks.run("on_exit")
	srv, err := hornbeam.Start(ctl.stopCtx, app, opts)
	if err != nil && ctl.stopCtx.Err() != nil {
		logf(errlog.Info, "stopped by %s before the workers were ready", ctl.stopSignal())
		return 0
	}
	if err != nil {
		fail(err, python)
		var ce *hornbeam.ConfigError
		if errors.As(err, &ce) {
			return 2
		}
		return 1
	}
	for _, a := range srv.Addrs() {
		logf(errlog.Info, "hornbeam %s listening on %s (%d workers, %s, app %s, pid %d, %s)", hornbeam.Version, addrURL(a, opts.CertFile != ""), opts.Workers, srv.Mode(), app, os.Getpid(), python())
	}
	if a := srv.StatsAddr(); a != nil {
		logf(errlog.Info, "stats on http://%s/stats and /metrics", a)
	}
	ctl.hooks = hooks
	ctl.serving(srv)
	if err := hooks.run("when_ready"); err != nil {
		logf(errlog.Error, "%v", err)
	}
	if len(c.reloadExtra) > 0 {
		if opts.ReloadOnChange {
			go watchExtraFiles(ctl.stopCtx, srv, c.reloadExtra, logf)
		} else {
			logf(errlog.Warning, "--reload-extra-file has no effect without --reload (as in gunicorn)")
		}
	}
	if sn := os.Getenv("SCRIPT_NAME"); sn != "" {
		logf(errlog.Info, "the app is mounted under SCRIPT_NAME %s (from the environment)", sn)
	}
	select {
	case <-ctl.stopCtx.Done():
	case err := <-srv.Err():
		logf(errlog.Error, "serving failed: %v", err)
		if errOut != stderr {
			fmt.Fprintf(stderr, "hornbeam: serving failed: %v\n", err)
		}
		ctl.stopping()
		srv.Stop(context.Background())
		return 1
	}
	logf(errlog.Info, "%s: shutting down, finishing in-flight requests (up to %s; a second SIGINT or a SIGQUIT stops at once)", ctl.stopSignal(), opts.GracefulTimeout)
	sctx, scancel := context.WithTimeout(ctl.cutCtx, opts.GracefulTimeout)
	defer scancel()
	if err := srv.Stop(sctx); err != nil {
		logf(errlog.Warning, "stopped with requests cut: %v", err)
	}
	return 0
}
