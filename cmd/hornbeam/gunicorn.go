package main

// Coming from gunicorn: its flag spellings, its worker classes, the options
// that make no sense here, its environment variables (PORT,
// WEB_CONCURRENCY, GUNICORN_CMD_ARGS) and the process-level settings that
// have no hornbeam.Options field (--chdir, --pid, --name, --env,
// --reload-extra-file). README.md's "Coming from gunicorn" lists every
// gunicorn setting and hornbeam's answer.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/hornbeam-go/hornbeam"
	"github.com/hornbeam-go/hornbeam/errlog"
)

// compatKey is the pflag annotation marking a flag that exists only for
// gunicorn's command lines: an alias, or an option refused or ignored. Such
// flags are hidden from --help (the setting's own line names the alias)
// and are neither HORNBEAM_* variables nor --print-config settings.
const compatKey = "gunicorn-compat"

func compatFlag(f *pflag.Flag) bool { _, ok := f.Annotations[compatKey]; return ok }

// aliasValue is a gunicorn spelling of a hornbeam flag: setting it sets the
// target (which then counts as given on the command line).
type aliasValue struct {
	fs     *pflag.FlagSet
	target string
	conv   func(string) string // gunicorn's value to hornbeam's; nil: as is
}

func (a aliasValue) String() string { return a.fs.Lookup(a.target).Value.String() }
func (a aliasValue) Type() string   { return a.fs.Lookup(a.target).Value.Type() }
func (a aliasValue) Set(s string) error {
	if a.conv != nil {
		s = a.conv(s)
	}
	return a.fs.Set(a.target, s)
}

// compatValue is a gunicorn option hornbeam refuses (or ignores): setting
// it records the option, reported once the command line is read.
type compatValue struct {
	name, why string
	refuse    bool
	c         *config
}

func (v compatValue) String() string { return "" }
func (v compatValue) Type() string   { return "string" }
func (v compatValue) Set(string) error {
	line := v.name + " is not supported: " + v.why
	if !v.refuse {
		line = "warning: " + v.name + " has no effect: " + v.why
		v.c.ignored = append(v.c.ignored, line)
		return nil
	}
	v.c.refused = append(v.c.refused, line)
	return nil
}

// gunicornFlags registers gunicorn's spellings on fs (after flags has
// registered hornbeam's own).
func gunicornFlags(fs *pflag.FlagSet, c *config) {
	// gunicorn spells one flag with an underscore (--limit-request-field_size);
	// any underscore reads as a dash.
	fs.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		return pflag.NormalizedName(strings.ReplaceAll(name, "_", "-"))
	})
	alias := func(name, short, target string, conv func(string) string) {
		f := fs.VarPF(aliasValue{fs, target, conv}, name, short, "gunicorn's name for --"+target)
		f.Annotations = map[string][]string{compatKey: {"alias", target}}
		f.Hidden = true
		t := fs.Lookup(target)
		if t.Value.Type() == "bool" {
			f.NoOptDefVal = "true"
		}
		spell := "--" + name
		if short != "" {
			spell = "-" + short + "/" + spell
		}
		if i := strings.Index(t.Usage, " (gunicorn: "); i >= 0 {
			t.Usage = t.Usage[:len(t.Usage)-1] + ", " + spell + ")"
		} else {
			t.Usage += " (gunicorn: " + spell + ")"
		}
	}
	// gunicorn's "-" for the error log is stderr, hornbeam's default.
	stderrDash := func(s string) string {
		if s == "-" {
			return ""
		}
		return s
	}
	alias("access-logfile", "", "access-log", nil)
	alias("error-logfile", "", "error-log", stderrDash)
	alias("log-file", "", "error-log", stderrDash)
	alias("keep-alive", "", "keepalive", nil)

	option := func(name, short string, refuse, isBool bool, why string) {
		spell := "--" + name
		if short != "" {
			spell = "-" + short + "/" + spell
		}
		f := fs.VarPF(compatValue{name: spell, why: why, refuse: refuse, c: c}, name, short, why)
		f.Annotations = map[string][]string{compatKey: {"option"}}
		f.Hidden = true
		if isBool {
			f.NoOptDefVal = "true"
		}
	}
	refuse := func(name, short string, isBool bool, why string) { option(name, short, true, isBool, why) }
	ignore := func(name string, why string) { option(name, "", false, true, why) }

	refuse("daemon", "D", true, "hornbeam stays in the foreground; run it under systemd, a container runtime or supervisord (see README: Deploying)")
	refuse("paste", "", false, "PasteDeploy .ini apps are not loaded; give the WSGI app as MODULE:CALLABLE (paste's loadapp can be called from a module that defines it)")
	refuse("paster", "", false, "PasteDeploy .ini apps are not loaded; give the WSGI app as MODULE:CALLABLE")
	refuse("paste-global", "", false, "PasteDeploy .ini apps are not loaded; give the WSGI app as MODULE:CALLABLE")
	refuse("worker-tmp-dir", "", false, "there is no heartbeat file: hornbeam watches its workers over their sockets (--timeout)")
	refuse("worker-connections", "", false, "only for gevent/eventlet workers; Go holds every client connection, idle or slow, and --threads sets how many requests a worker runs at once")
	refuse("spew", "", true, "no statement tracing; use py-spy or --stats-bind's /debug/pprof/ for the Go side")
	refuse("ssl-version", "", false, "Go's TLS negotiates TLS 1.2 or 1.3")
	refuse("log-config", "", false, "hornbeam's logs are not Python logging: use --error-log, --access-log, --log-level, --access-log-json")
	refuse("log-config-json", "", false, "hornbeam's logs are not Python logging: use --error-log, --access-log, --log-level, --access-log-json")
	refuse("logger-class", "", false, "hornbeam's logs are not Python logging: use --error-log, --access-log, --log-level, --access-log-json")
	refuse("log-syslog", "", true, "no syslog output: log to stderr (journald) or a file")
	refuse("log-syslog-to", "", false, "no syslog output: log to stderr (journald) or a file")
	refuse("log-syslog-prefix", "", false, "no syslog output: log to stderr (journald) or a file")
	refuse("log-syslog-facility", "", false, "no syslog output: log to stderr (journald) or a file")
	refuse("statsd-host", "", false, "no statsd: --stats-bind serves /metrics (Prometheus) and /stats (JSON)")
	refuse("statsd-prefix", "", false, "no statsd: --stats-bind serves /metrics (Prometheus) and /stats (JSON)")
	refuse("dogstatsd-tags", "", false, "no statsd: --stats-bind serves /metrics (Prometheus) and /stats (JSON)")
	refuse("proxy-allow-from", "", false, "--forwarded-allow-ips also lists the proxies allowed to send PROXY protocol headers")
	refuse("backlog", "", false, "the listen backlog is the kernel's (net.core.somaxconn); Go accepts connections as they come")
	refuse("reuse-port", "", true, "not supported; for a zero-downtime restart use SIGUSR2 (binary upgrade) or socket activation")
	refuse("tolerate-dangerous-framing", "", true, "hornbeam refuses ambiguous HTTP/1 framing (request smuggling) and has no switch to allow it")
	refuse("strip-header-spaces", "", true, "hornbeam refuses header names with spaces (request smuggling) and has no switch to strip them")
	refuse("header-map", "", false, "headers with underscores are dropped (as gunicorn's default, drop) and there is no switch")
	refuse("forwarder-headers", "", false, "hornbeam takes only the standard X-Forwarded-*/Forwarded headers from --forwarded-allow-ips")
	refuse("permit-unconventional-http-method", "", true, "methods must be RFC 9110 tokens")
	refuse("permit-unconventional-http-version", "", true, "only HTTP/1.0, 1.1 and 2 are served")
	refuse("casefold-http-method", "", true, "methods are passed as sent")
	refuse("permit-obsolete-folding", "", true, "obsolete header line folding is refused (request smuggling)")
	refuse("reload-engine", "", false, "hornbeam's --reload polls the files; there is no inotify engine to choose")
	ignore("capture-output", "what the workers print always goes to the error log")
	option("enable-stdio-inheritance", "R", false, true, "what the workers print always goes to the error log")
	ignore("no-sendfile", "Go sends files (wsgi.file_wrapper) itself")
	ignore("suppress-ragged-eofs", "Go's TLS handles it")
	ignore("do-handshake-on-connect", "Go's TLS handshakes on the first read")
	ignore("disable-redirect-access-to-syslog", "there is no syslog output")
}

// workerClass maps -k to the application interface hornbeam serves
// ("wsgi", "asgi", or "" to recognise it), or the one line saying what to
// use instead.
func workerClass(k string) (string, error) {
	switch k {
	case "":
		return "", nil
	case "wsgi", "sync", "gthread", "gunicorn.workers.sync.SyncWorker", "gunicorn.workers.gthread.ThreadWorker":
		return "wsgi", nil
	case "asgi", "uvicorn.workers.UvicornWorker", "uvicorn_worker.UvicornWorker", "uvicorn.workers.UvicornH11Worker":
		return "asgi", nil // hornbeam runs the event loop itself
	}
	low := strings.ToLower(k)
	switch {
	case strings.Contains(low, "gevent"), strings.Contains(low, "eventlet"):
		return "", usagef("-k %s: hornbeam has no greenlet workers: Go holds every connection, idle or slow; for many requests at once per worker use -k gthread --threads N (and more -w), or an ASGI app with -k asgi", k)
	case strings.Contains(low, "tornado"):
		return "", usagef("-k %s: hornbeam serves WSGI and ASGI apps; a Tornado app needs Tornado's own server", k)
	}
	return "", usagef("unknown worker class %q; use -k sync (or wsgi), -k gthread with --threads N, or -k asgi", k)
}

// suggest is the " did you mean --X?" for an unknown flag named in err,
// or "" when no flag is close.
func suggest(fs *pflag.FlagSet, err error) string {
	msg := err.Error()
	name, ok := strings.CutPrefix(msg, "unknown flag: --")
	if !ok {
		return ""
	}
	name, _, _ = strings.Cut(name, "=")
	best, bestD := "", 1<<30
	fs.VisitAll(func(f *pflag.Flag) {
		if d := editDistance(name, f.Name); d < bestD || d == bestD && f.Name < best {
			best, bestD = f.Name, d
		}
	})
	if best == "" || bestD > max(2, len(name)/3) {
		return ""
	}
	return "; did you mean --" + best + "?"
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// shellSplit splits s into words as a POSIX shell would (quotes and
// backslashes; no expansions), for GUNICORN_CMD_ARGS.
func shellSplit(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == ' ' || ch == '\t' || ch == '\n':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case ch == '\\':
			if i+1 < len(s) {
				i++
				w.WriteByte(s[i])
			}
			inWord = true
		case ch == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated ' quote")
			}
			w.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case ch == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				w.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New("unterminated \" quote")
			}
			inWord = true
		default:
			w.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

// applyCmdArgsEnv applies GUNICORN_CMD_ARGS, gunicorn's extra arguments,
// to every flag the command line left unset (the command line wins, as in
// gunicorn), and returns the application it names, if any.
func applyCmdArgsEnv(fs *pflag.FlagSet, c *config, src sources) ([]string, error) {
	env := os.Getenv("GUNICORN_CMD_ARGS")
	if strings.TrimSpace(env) == "" {
		return nil, nil
	}
	words, err := shellSplit(env)
	if err != nil {
		return nil, usagef("GUNICORN_CMD_ARGS: %v", err)
	}
	var c2 config
	fs2 := flags(&c2)
	fs2.SetOutput(discard{})
	fs2.Usage = func() {}
	if err := fs2.Parse(words); err != nil {
		return nil, usagef("GUNICORN_CMD_ARGS: %v%s", err, suggest(fs2, err))
	}
	c.refused = append(c.refused, c2.refused...)
	c.ignored = append(c.ignored, c2.ignored...)
	fs2.Visit(func(f2 *pflag.Flag) {
		if err != nil || compatFlag(f2) {
			return
		}
		f := fs.Lookup(f2.Name)
		if f.Changed {
			return
		}
		if sv, ok := f2.Value.(pflag.SliceValue); ok {
			err = f.Value.(pflag.SliceValue).Replace(sv.GetSlice())
			f.Changed = true
		} else {
			err = fs.Set(f.Name, f2.Value.String())
		}
		src[f.Name] = "env GUNICORN_CMD_ARGS"
	})
	return fs2.Args(), err
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// applyPaaSEnv applies PORT and WEB_CONCURRENCY, as gunicorn does, to
// --bind and --workers when nothing else set them.
func applyPaaSEnv(fs *pflag.FlagSet, src sources) error {
	if port, ok := os.LookupEnv("PORT"); ok && port != "" && !fs.Lookup("bind").Changed {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return usagef("PORT=%q: want a port number, 1 to 65535", port)
		}
		fs.Lookup("bind").Value.(pflag.SliceValue).Replace([]string{"0.0.0.0:" + port})
		src["bind"] = "env PORT"
	}
	if wc, ok := os.LookupEnv("WEB_CONCURRENCY"); ok && wc != "" && !fs.Lookup("workers").Changed {
		n, err := strconv.Atoi(wc)
		if err != nil || n < 1 {
			return usagef("WEB_CONCURRENCY=%q: want a number of workers, at least 1", wc)
		}
		fs.Set("workers", wc)
		src["workers"] = "env WEB_CONCURRENCY"
	}
	return nil
}

// processSettings carries out --chdir and --env (before anything is
// opened), and reads --ciphers and -u/-g (gunconf_tls.go).
func (c *config) processSettings() error {
	if c.chdir != "" {
		if err := os.Chdir(c.chdir); err != nil {
			return usagef("--chdir: %v", err)
		}
	}
	for _, kv := range c.env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.ContainsAny(k, "\x00") {
			return usagef("--env %q: want KEY=VALUE", kv)
		}
		os.Setenv(k, v)
	}
	for i, b := range c.opts.Bind {
		nb, err := gunicornBind(b)
		if err != nil {
			return err
		}
		c.opts.Bind[i] = nb
	}
	return c.tlsAndUser()
}

// pidFile is --pid: the master's pid, written before the workers start and
// removed at exit (unless another process, a binary upgrade's, took it).
type pidFile struct{ path string }

func writePidFile(path string) (*pidFile, error) {
	if path == "" {
		return nil, nil
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("--pid: %w", err)
	}
	return &pidFile{path}, nil
}

func (p *pidFile) remove() {
	if p == nil {
		return
	}
	if b, err := os.ReadFile(p.path); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(os.Getpid()) {
		os.Remove(p.path)
	}
}

// setProcName is --name: the master's name in ps -e, top and
// /proc/PID/comm (Linux keeps 15 bytes).
func setProcName(name string) error {
	if name == "" {
		return nil
	}
	if len(name) > 15 {
		name = name[:15]
	}
	return os.WriteFile("/proc/self/comm", []byte(name), 0)
}

// watchExtraFiles is --reload-extra-file: reload the workers when one of
// files changes (its modification time or size), polled every second.
func watchExtraFiles(ctx context.Context, srv *hornbeam.Server, files []string, logf func(errlog.Level, string, ...any) error) {
	type stamp struct {
		mod  time.Time
		size int64
		ok   bool
	}
	look := func(p string) stamp {
		fi, err := os.Stat(p)
		if err != nil {
			return stamp{}
		}
		return stamp{fi.ModTime(), fi.Size(), true}
	}
	seen := map[string]stamp{}
	for _, f := range files {
		seen[f] = look(f)
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var changed []string
		for _, f := range files {
			if s := look(f); s != seen[f] {
				seen[f] = s
				changed = append(changed, f)
			}
		}
		if len(changed) > 0 {
			sort.Strings(changed)
			logf(errlog.Info, "--reload-extra-file: %s changed; reloading the workers", strings.Join(changed, ", "))
			srv.Reload(ctx)
		}
	}
}
