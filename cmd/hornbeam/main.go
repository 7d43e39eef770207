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
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/hornbeam-go/hornbeam"
	"github.com/hornbeam-go/hornbeam/accesslog"
	"github.com/hornbeam-go/hornbeam/pool"
	"github.com/hornbeam-go/hornbeam/proxy"
	"github.com/hornbeam-go/hornbeam/top"
)

func main() {
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
}

func flags(c *config) *pflag.FlagSet {
	fs := pflag.NewFlagSet("hornbeam", pflag.ContinueOnError)
	fs.SortFlags = false
	o := &c.opts
	*o = hornbeam.Options{Workers: 4, Threads: 1, Timeout: 30 * time.Second, Keepalive: 2 * time.Second,
		GracefulTimeout: 30 * time.Second, MaxRequests: 1000, Python: "python3", ReadHeaderTimeout: 10 * time.Second, BodyTimeout: 30 * time.Second,
		MaxBodySize: 1 << 30, LimitRequestLine: 4094, LimitRequestFields: 100, LimitRequestFieldSize: 8190}
	fs.StringSliceVarP(&o.Bind, "bind", "b", []string{"127.0.0.1:8000"}, "address to listen on, HOST:PORT or unix:/path (repeatable)")
	fs.IntVarP(&o.Workers, "workers", "w", o.Workers, "Python worker processes")
	fs.StringVarP(&c.workerClass, "worker-class", "k", "wsgi", "application interface: wsgi")
	fs.IntVar(&o.Threads, "threads", o.Threads, "concurrent requests per worker")
	fs.VarP(duration{&o.Timeout}, "timeout", "t", "per-request timeout: past it the client gets 504 and the worker is replaced (0: none)")
	fs.IntVar(&o.MaxRequests, "max-requests", o.MaxRequests, "recycle a worker after this many requests (0: never)")
	fs.IntVar(&o.MaxRequestsJitter, "max-requests-jitter", 0, "add a random 0..N to --max-requests per worker")
	fs.Var(duration{&o.Keepalive}, "keepalive", "how long an idle keep-alive connection stays open")
	fs.StringSliceVar(&o.PythonPath, "pythonpath", []string{"."}, "directories put in front of sys.path (repeatable or comma-separated)")
	fs.BoolVar(&o.Preload, "preload", false, "import the app once, in a process that forks the workers (shared memory, fast restarts)")
	fs.BoolVar(&o.CPUAffinity, "cpu-affinity", false, "pin worker i, and the server thread answering its state calls, to CPU i (Linux; state calls about 2x faster; for a server that has the machine to itself)")
	fs.StringVar(&o.Python, "python", o.Python, "Python interpreter the workers run (Debian's packages: /usr/bin/python3)")
	fs.StringVar(&c.venv, "venv", "", "virtualenv to run the workers in (uses DIR/bin/python)")
	fs.StringVar(&o.CertFile, "certfile", "", "TLS certificate (PEM); enables HTTPS and HTTP/2")
	fs.StringVar(&o.KeyFile, "keyfile", "", "TLS private key (PEM)")
	fs.StringVar(&c.accessLog, "access-log", "", "access log file, - for stdout (default off)")
	fs.StringVar(&o.AccessLogFormat, "access-logformat", accesslog.DefaultFormat, "access log format with gunicorn's atoms: %(h)s %(r)s %(s)s %(D)s %({header}i)s ...")
	fs.BoolVar(&o.AccessLogJSON, "access-log-json", false, "write the access log as JSON lines")
	fs.StringVar(&c.errorLog, "error-log", "", "error log file, - for stdout (default stderr)")
	fs.Var(duration{&o.GracefulTimeout}, "graceful-timeout", "on SIGTERM/SIGINT, how long in-flight requests may take to finish")
	fs.Var(duration{&o.ReadHeaderTimeout}, "read-header-timeout", "how long a client may take to send its request headers")
	fs.Var(duration{&o.BodyTimeout}, "body-timeout", "drop a request whose body stops arriving for this long (408)")
	fs.Var(size{&o.MaxBodySize}, "max-body-size", "largest request body, bytes or with K/M/G (413 beyond; 0: unlimited)")
	fs.IntVar(&o.LimitRequestLine, "limit-request-line", o.LimitRequestLine, "largest request line in bytes (414 beyond)")
	fs.IntVar(&o.LimitRequestFields, "limit-request-fields", o.LimitRequestFields, "most header fields in a request (431 beyond)")
	fs.IntVar(&o.LimitRequestFieldSize, "limit-request-field-size", o.LimitRequestFieldSize, "largest header field in bytes (431 beyond)")
	fs.Var(size{&o.MaxWorkerMemory}, "max-worker-memory", "recycle a worker gracefully once its RSS passes this, e.g. 512M (0: no bound)")
	fs.StringVar(&o.HealthPath, "health-path", "", "answer this path from Go: 200 while a worker is ready, 503 otherwise (default off)")
	fs.BoolVar(&o.ReloadOnChange, "reload", false, "restart the workers when a .py file under --pythonpath changes (development)")
	fs.StringVar(&c.umask, "umask", "", "umask for unix socket binds, octal like 007 (default: the process umask)")
	fs.StringSliceVar(&o.ForwardedAllowIPs, "forwarded-allow-ips", proxy.DefaultAllow, "proxies trusted for Forwarded / X-Forwarded-* headers (and PROXY protocol): IPs, CIDRs or *; the client is the right-most X-Forwarded-For / Forwarded for= address not in this list (with *: the left-most)")
	fs.BoolVar(&o.ForwardedHost, "forwarded-host", false, "take the Host from a trusted proxy's X-Forwarded-Host / Forwarded host= (default: keep the request's Host header)")
	fs.BoolVar(&o.ProxyProtocol, "proxy-protocol", false, "accept PROXY protocol v1/v2 headers from trusted proxies")
	fs.StringArrayVar(&o.Static, "static", nil, "serve files from Go: URL_PREFIX=DIR, like /assets=./static (repeatable)")
	fs.StringVar(&o.StatsBind, "stats-bind", "", "serve GET /stats (JSON), /metrics (Prometheus) and /debug/pprof/ on this address (default off)")
	fs.Int64Var(&o.StateMaxBytes, "state-max-bytes", 0, "bound the shared state's memory, evicting expired then least recently used keys (0: unbounded)")
	fs.IntVar(&o.StateMaxValueBytes, "state-max-value-bytes", 64<<20, "largest single value in the shared state")
	fs.StringVarP(&c.configFile, "config", "c", "", "TOML file with settings named like the flags (precedence: flag > HORNBEAM_* env > file > default)")
	fs.BoolVar(&c.printConfig, "print-config", false, "print the effective configuration, and where each value came from, then exit")
	fs.BoolVar(&c.version, "version", false, "print the version and exit")
	return fs
}

func openLog(path string, def io.Writer, stdout io.Writer) (io.Writer, error) {
	switch path {
	case "":
		return def, nil
	case "-":
		return stdout, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening log: %w", err)
	}
	return f, nil
}

// handleSignal carries out an operator's signal.
func handleSignal(ctx context.Context, srv *hornbeam.Server, sig os.Signal, logf func(string, ...any)) {
	switch sig {
	case syscall.SIGHUP:
		logf("SIGHUP: reloading the workers")
		if err := srv.Reload(ctx); err != nil {
			logf("reload failed: %v", err)
		}
	case syscall.SIGTTIN, syscall.SIGTTOU:
		delta := 1
		if sig == syscall.SIGTTOU {
			delta = -1
		}
		n, err := srv.Scale(ctx, delta)
		if err != nil {
			logf("scaling failed: %v", err)
		}
		logf("%s: %d workers wanted", sig, n)
	case syscall.SIGUSR2:
		pid, err := upgrade(srv)
		if err != nil {
			logf("SIGUSR2: binary upgrade failed: %v", err)
			return
		}
		logf("SIGUSR2: started a new hornbeam (pid %d) on the same sockets; send SIGTERM to this one (pid %d) once it serves", pid, os.Getpid())
	}
}

// upgrade starts the hornbeam binary anew on this server's listening
// sockets (HORNBEAM_INHERIT_FDS), as nginx and gunicorn do on SIGUSR2. Both
// serve until the operator stops the old one.
func upgrade(srv *hornbeam.Server) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	files, err := srv.ListenerFiles()
	if err != nil {
		return 0, err
	}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = append(os.Environ(), "HORNBEAM_INHERIT_FDS="+strconv.Itoa(len(files)))
	cmd.ExtraFiles = files
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	go cmd.Wait()
	return cmd.Process.Pid, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "top" {
		return top.Main(args[1:], os.Stdin, stdout, stderr)
	}
	var c config
	fs := flags(&c)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: hornbeam [flags] MODULE:CALLABLE\n       hornbeam [flags] check MODULE:CALLABLE   (import the app, exit 0 or 1)\n       hornbeam top [--once] [STATS_ADDR]        (watch a server started with --stats-bind)\n\nServes a Python WSGI application (CALLABLE defaults to \"application\").\nEvery flag can also come from HORNBEAM_<FLAG> (e.g. HORNBEAM_WORKERS=8); a flag wins.\n\nFlags:\n%s", fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "hornbeam: %v (see hornbeam --help)\n", err)
		return 2
	}
	src := commandLineSources(fs)
	if err := applyEnv(fs, src); err != nil {
		fmt.Fprintf(stderr, "hornbeam: %v\n", err)
		return 2
	}
	if c.configFile != "" {
		if err := applyFile(fs, c.configFile, src); err != nil {
			fmt.Fprintf(stderr, "hornbeam: %v\n", err)
			return 2
		}
	}
	if c.printConfig {
		printConfig(stdout, fs, src)
		return 0
	}
	if c.version {
		fmt.Fprintf(stdout, "hornbeam %s\n", hornbeam.Version)
		return 0
	}
	if c.workerClass != "wsgi" {
		if c.workerClass == "asgi" {
			fmt.Fprintln(stderr, "hornbeam: -k asgi is not supported yet; only WSGI applications can be served (-k wsgi)")
		} else {
			fmt.Fprintf(stderr, "hornbeam: unknown worker class %q; use -k wsgi\n", c.workerClass)
		}
		return 2
	}
	check := fs.NArg() == 2 && fs.Arg(0) == "check"
	if fs.NArg() != 1 && !check {
		fmt.Fprintln(stderr, "hornbeam: give exactly one application, like: hornbeam myapp:application (see hornbeam --help)")
		return 2
	}
	app := fs.Arg(fs.NArg() - 1)
	if c.opts.Workers < 1 || c.opts.Threads < 1 {
		fmt.Fprintf(stderr, "hornbeam: --workers and --threads must be at least 1 (got %d and %d)\n", c.opts.Workers, c.opts.Threads)
		return 2
	}
	if c.venv != "" {
		c.opts.Python = filepath.Join(c.venv, "bin", "python")
	}
	if c.opts.Timeout == 0 {
		c.opts.Timeout = -1
	}
	if c.opts.BodyTimeout == 0 {
		c.opts.BodyTimeout = -1
	}
	if c.umask != "" {
		m, err := strconv.ParseUint(strings.TrimPrefix(c.umask, "0o"), 8, 32)
		if err != nil || m > 0o777 {
			fmt.Fprintf(stderr, "hornbeam: --umask %q: want an octal mask like 007\n", c.umask)
			return 2
		}
		c.opts.UnixSocketMode = os.FileMode(0o777 &^ m)
	}
	inherited, err := hornbeam.InheritedListeners()
	if err != nil {
		fmt.Fprintf(stderr, "hornbeam: %v\n", err)
		return 1
	}
	if len(inherited) > 0 {
		c.opts.Listeners, c.opts.Bind = inherited, nil
	}
	if c.opts.MaxBodySize == 0 {
		c.opts.MaxBodySize = -1
	}
	if c.opts.ErrorLog, err = openLog(c.errorLog, stderr, stdout); err != nil {
		fmt.Fprintf(stderr, "hornbeam: --error-log: %v\n", err)
		return 2
	}
	if c.accessLog != "" {
		if c.opts.AccessLog, err = openLog(c.accessLog, nil, stdout); err != nil {
			fmt.Fprintf(stderr, "hornbeam: --access-log: %v\n", err)
			return 2
		}
	}

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	if check {
		if err := hornbeam.Check(ctx, app, c.opts); err != nil {
			var se *pool.StartError
			if errors.As(err, &se) && c.errorLog != "" {
				fmt.Fprintf(stderr, "%s\n", strings.TrimRight(se.Output, "\n"))
			}
			fmt.Fprintf(stderr, "hornbeam check: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "hornbeam check: %s imports and is callable\n", app)
		return 0
	}
	srv, err := hornbeam.Start(ctx, app, c.opts)
	if err != nil && ctx.Err() != nil {
		fmt.Fprintln(stderr, "hornbeam: stopped by a signal before the workers were ready")
		return 0
	}
	if err != nil {
		var se *pool.StartError
		if errors.As(err, &se) && c.errorLog != "" {
			fmt.Fprintf(stderr, "%s\n", strings.TrimRight(se.Output, "\n"))
		}
		fmt.Fprintf(stderr, "hornbeam: %v\n", err)
		return 1
	}
	for _, a := range srv.Addrs() {
		fmt.Fprintf(c.opts.ErrorLog, "hornbeam %s listening on %s://%s (%d workers, app %s)\n", hornbeam.Version, a.Network(), a, c.opts.Workers, app)
	}
	if a := srv.StatsAddr(); a != nil {
		fmt.Fprintf(c.opts.ErrorLog, "stats on http://%s/stats and /metrics\n", a)
	}
	ops := make(chan os.Signal, 8)
	signal.Notify(ops, syscall.SIGHUP, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGUSR2)
	defer signal.Stop(ops)
	logf := func(format string, args ...any) { fmt.Fprintf(c.opts.ErrorLog, format+"\n", args...) }
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case err := <-srv.Err():
			fmt.Fprintf(stderr, "hornbeam: serving failed: %v\n", err)
			srv.Stop(context.Background())
			return 1
		case sig := <-ops:
			go handleSignal(ctx, srv, sig, logf)
		}
	}
	fmt.Fprintf(c.opts.ErrorLog, "shutting down: finishing in-flight requests (up to %s)\n", c.opts.GracefulTimeout)
	sctx, scancel := context.WithTimeout(context.Background(), c.opts.GracefulTimeout)
	defer scancel()
	if err := srv.Stop(sctx); err != nil {
		fmt.Fprintf(c.opts.ErrorLog, "hornbeam: stopped with requests cut: %v\n", err)
	}
	return 0
}
