package main

// gunicorn.conf.py: `-c FILE.py` (or file:FILE, python:MODULE), and
// ./gunicorn.conf.py when no -c is given, as gunicorn loads them. The file
// is Python, so the configured interpreter runs it
// (python/hornbeam/_gunicorn_conf.py prints its settings as JSON); each
// setting is mapped onto the hornbeam flag it corresponds to, below the
// command line, GUNICORN_CMD_ARGS and HORNBEAM_* (which win), and every
// setting hornbeam lacks gets one warning line, or refuses to start (exit
// 2) like its command-line flag. Server hooks: on_starting, when_ready and
// on_exit run in a short-lived Python process with a stand-in server
// (runHook); pre_fork and child_exit in the zygote, post_fork,
// post_worker_init, pre_request, post_request and worker_exit in the
// process-mode workers (python/hornbeam/_worker.py, told the file by
// HORNBEAM_GUNICORN_CONF); the others are reported as not called.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/spf13/pflag"

	"github.com/hornbeam-go/hornbeam"
	"github.com/hornbeam-go/hornbeam/errlog"
	pyrt "github.com/hornbeam-go/hornbeam/python"
)

// gunConf is a gunicorn configuration as read.
type gunConf struct {
	path     string         // as named (for messages)
	location string         // what the Python side loads: an absolute path, or python:MODULE
	settings map[string]any // the file's settings, JSON-decoded (numbers as json.Number)
	hooks    []string       // the hook functions it defines
	app      string         // wsgi_app
	sysPath  []string       // entries the file put on sys.path (not seen by the workers: a warning)
}

// gunicornConfigFile reports whether a --config names a gunicorn
// configuration (Python) rather than hornbeam's TOML.
func gunicornConfigFile(path string) bool {
	return strings.HasSuffix(path, ".py") || strings.HasPrefix(path, "python:") || strings.HasPrefix(path, "file:")
}

// defaultGunicornConf is the file gunicorn reads when no -c is given:
// gunicorn.conf.py in the working directory (--chdir's, when given).
const defaultGunicornConf = "gunicorn.conf.py"

// applyConfig reads the configuration file: --config's (TOML, or a
// gunicorn.conf.py), or ./gunicorn.conf.py when present and no --config is
// given. It returns the application a gunicorn file names (wsgi_app).
func (c *config) applyConfig(fs *pflag.FlagSet, src sources) (app string, err error) {
	path := c.configFile
	if path == "" {
		if c.version {
			return "", nil
		}
		p := filepath.Join(c.chdir, defaultGunicornConf)
		if fi, err := os.Stat(p); err != nil || fi.IsDir() {
			return "", nil
		}
		path = p
	} else if !gunicornConfigFile(path) {
		var raw map[string]any
		_, tomlErr := toml.DecodeFile(path, &raw)
		if tomlErr == nil || filepath.Ext(path) == ".toml" {
			return "", applyFile(fs, path, src)
		}
		// Not TOML: gunicorn reads any -c file as Python (with a warning
		// when it lacks the .py extension).
		g, err := readGunicornConf(path, c.chdir, c.interpreter())
		if err != nil {
			return "", usagef("--config %s is neither TOML (%v) nor a gunicorn configuration that runs: %v", path, tomlErr, err)
		}
		c.ignored = append(c.ignored, "warning: --config "+path+" is not TOML: read as a gunicorn configuration (Python; name it .py to say so)")
		return c.useGunicornConf(g, fs, src)
	}
	g, err := readGunicornConf(path, c.chdir, c.interpreter())
	if err != nil {
		return "", err
	}
	return c.useGunicornConf(g, fs, src)
}

// useGunicornConf applies a gunicorn configuration read.
func (c *config) useGunicornConf(g *gunConf, fs *pflag.FlagSet, src sources) (string, error) {
	c.gconf = g
	if err := g.apply(fs, c, src); err != nil {
		return "", err
	}
	return g.app, nil
}

// interpreter is the Python the workers will run (--python, --venv).
func (c *config) interpreter() string {
	if c.venv != "" {
		return filepath.Join(c.venv, "bin", "python")
	}
	return c.opts.Python
}

// pythonSource is the Python side of gunicorn.conf.py support, run with -c.
func pythonSource() string {
	b, err := pyrt.FS.ReadFile("hornbeam/_gunicorn_conf.py")
	if err != nil {
		panic(err) // embedded at build time
	}
	return string(b)
}

// readGunicornConf runs the file under python and returns its settings. A
// relative path is taken from dir (--chdir's), as gunicorn does.
func readGunicornConf(path, dir, python string) (*gunConf, error) {
	g := &gunConf{path: path, location: path}
	what := "--config " + path
	if path == filepath.Join(dir, defaultGunicornConf) {
		what = path + " (read when no --config is given, as gunicorn does)"
	}
	file, isFile := strings.CutPrefix(path, "file:")
	if !strings.HasPrefix(path, "python:") {
		if !isFile {
			file = path
		}
		if !filepath.IsAbs(file) {
			file = filepath.Join(dir, file)
		}
		abs, err := filepath.Abs(file)
		if err != nil {
			return nil, usagef("%s: %v", what, err)
		}
		if _, err := os.Stat(abs); err != nil {
			return nil, usagef("%s: %v", what, err)
		}
		g.location = abs
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-c", pythonSource(), "dump", g.location)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return nil, usagef("%s is Python (a gunicorn configuration) and %s cannot run it: %v; pass --python (Debian: --python /usr/bin/python3)", what, python, err)
		}
		out := strings.TrimRight(stderr.String(), "\n")
		return nil, usagef("%s: the file failed when %s ran it (fix it, or run it with python3 to see):\n%s", what, python, out)
	}
	if stderr.Len() > 0 {
		os.Stderr.Write(stderr.Bytes()) // what the file printed, as gunicorn shows it
	}
	var raw struct {
		Settings map[string]any    `json:"settings"`
		Hooks    []string          `json:"hooks"`
		Environ  map[string]string `json:"environ"`
		Unset    []string          `json:"unset"`
		SysPath  []string          `json:"sys_path"`
	}
	dec := json.NewDecoder(&stdout)
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, usagef("%s: reading its settings from %s: %v", what, python, err)
	}
	g.settings, g.hooks = raw.Settings, raw.Hooks
	// The file ran in gunicorn's master, so what it did to os.environ
	// reached the workers: the same here.
	for k, v := range raw.Environ {
		os.Setenv(k, v)
	}
	for _, k := range raw.Unset {
		os.Unsetenv(k)
	}
	g.sysPath = raw.SysPath
	return g, nil
}

// gunicornFlagNames are the settings whose hornbeam flag is not the
// setting's name with dashes.
var gunicornFlagNames = map[string]string{
	"accesslog": "access-log", "errorlog": "error-log", "loglevel": "log-level", "preload_app": "preload",
	"pidfile": "pid", "proc_name": "name", "raw_env": "env", "reload_extra_files": "reload-extra-file",
	"access_log_format": "access-logformat", "syslog": "log-syslog", "syslog_addr": "log-syslog-to",
	"syslog_prefix": "log-syslog-prefix", "syslog_facility": "log-syslog-facility", "logconfig": "log-config",
	"logconfig_json": "log-config-json", "logconfig_dict": "log-config", "proxy_allow_ips": "proxy-allow-from",
	"raw_paste_global_conf": "paste-global",
}

// gunicornDefaults are gunicorn's defaults for the settings hornbeam
// refuses or ignores: a file that sets one to its default (as gunicorn's
// example configuration does) changes nothing, and is accepted silently.
// Besides these, None, False, "", [] and {} count as defaults.
var gunicornDefaults = map[string][]string{
	"backlog": {"2048"}, "worker_connections": {"1000"}, "reload_engine": {"auto"}, "header_map": {"drop"},
	"syslog_addr": {"udp://localhost:514", "unix:///var/run/syslog", "unix:///var/run/log"}, "syslog_facility": {"user"},
	"logger_class": {"gunicorn.glogging.Logger"}, "suppress_ragged_eofs": {"true"}, "forwarder_headers": {"SCRIPT_NAME,PATH_INFO"},
	"proxy_allow_ips": {"127.0.0.1", "127.0.0.1,::1"}, "ssl_version": {"2", "17"}, "sendfile": {"true"},
}

// gunicornOnly are settings with no hornbeam flag, and what hornbeam says.
var gunicornOnly = map[string]struct {
	refuse bool
	why    string
}{
	"tmp_upload_dir":        {false, "request bodies above 64 KiB are spooled to TMPDIR (set TMPDIR in the environment)"},
	"secure_scheme_headers": {false, "the scheme comes from a trusted proxy's X-Forwarded-Proto or Forwarded proto= (--forwarded-allow-ips)"},
	"check_config":          {false, "use --check-config on the command line"},
	"print_config":          {false, "use --print-config on the command line"},
	"config":                {false, "a configuration file does not name another one"},
	"default_proc_name":     {false, "use proc_name"},
	"ssl_context":           {true, "TLS is Go's: use certfile, keyfile, ca_certs, cert_reqs and ciphers"},
}

// apply sets the flags not set already (command line, GUNICORN_CMD_ARGS,
// HORNBEAM_*) from the file's settings, and records a warning or a
// refusal for each setting hornbeam does not have.
func (g *gunConf) apply(fs *pflag.FlagSet, c *config, src sources) error {
	names := make([]string, 0, len(g.settings))
	for k := range g.settings {
		names = append(names, k)
	}
	sort.Strings(names)
	warn := func(format string, args ...any) {
		c.ignored = append(c.ignored, "warning: "+g.path+": "+fmt.Sprintf(format, args...))
	}
	if len(g.sysPath) > 0 {
		warn("the file adds %s to sys.path, which hornbeam's workers do not see: set pythonpath = %q instead (or --pythonpath)", strings.Join(g.sysPath, ", "), strings.Join(g.sysPath, ","))
	}
	for _, h := range g.hooks {
		if o, ok := gunicornOnly[h]; ok && o.refuse {
			c.refused = append(c.refused, fmt.Sprintf("%s: %s is not supported: %s", g.path, h, o.why))
		}
	}
	flagFor := func(k string) string {
		if name, ok := gunicornFlagNames[k]; ok {
			return name
		}
		return strings.ReplaceAll(k, "_", "-")
	}
	for _, k := range names {
		v := g.settings[k]
		if low := strings.ToLower(k); k != low {
			// Not a setting (gunicorn's are lower case): a constant of the
			// file's own, unless it is a setting in the wrong case.
			if _, only := gunicornOnly[low]; only || low == "wsgi_app" || fs.Lookup(flagFor(low)) != nil && !notInFile[flagFor(low)] {
				warn("%s is not read: gunicorn's settings are lower case (%s)", k, low)
			}
			continue
		}
		if k == "wsgi_app" {
			if s, ok := v.(string); ok && s != "" {
				g.app = s
			} else if v != nil {
				return usagef("%s: wsgi_app = %s: want a string like \"myapp:app\"", g.path, pyRepr(v))
			}
			continue
		}
		if k == "sendfile" && v == false {
			k = "no_sendfile" // gunicorn's --no-sendfile
		}
		if o, ok := gunicornOnly[k]; ok {
			if isGunicornDefault(k, v) {
				continue
			}
			if o.refuse {
				c.refused = append(c.refused, fmt.Sprintf("%s: %s is not supported: %s", g.path, k, o.why))
			} else {
				warn("%s = %s has no effect: %s", k, pyRepr(v), o.why)
			}
			continue
		}
		name := flagFor(k)
		f := fs.Lookup(name)
		if f == nil || notInFile[name] {
			warn("%s is not a gunicorn setting hornbeam knows; ignored (gunicorn ignores it too; a misspelling?)", k)
			continue
		}
		if compatFlag(f) {
			a := f.Annotations[compatKey]
			if a[0] == "alias" {
				name, f = a[1], fs.Lookup(a[1])
			} else {
				if isGunicornDefault(k, v) {
					continue
				}
				cv := f.Value.(compatValue)
				if cv.refuse {
					c.refused = append(c.refused, fmt.Sprintf("%s: %s = %s is not supported: %s", g.path, k, pyRepr(v), cv.why))
				} else {
					warn("%s = %s has no effect: %s", k, pyRepr(v), cv.why)
				}
				continue
			}
		}
		if f.Changed || v == nil {
			continue // the command line or the environment wins; None is gunicorn's "not set"
		}
		if err := setFromGunicorn(fs, f, k, v); err != nil {
			return usagef("%s: %s = %s: %v", g.path, k, pyRepr(v), err)
		}
		src[f.Name] = "file " + g.path
	}
	return nil
}

// setFromGunicorn sets flag f from the value v of gunicorn setting k.
func setFromGunicorn(fs *pflag.FlagSet, f *pflag.Flag, k string, v any) error {
	if m, ok := v.(map[string]any); ok {
		if r, ok := m["__repr__"]; ok {
			return fmt.Errorf("a value hornbeam cannot read (%v); use a string, number, boolean or list", r)
		}
		return errors.New("want a string, number, boolean or list, not a dict")
	}
	switch k {
	case "errorlog":
		if v == "-" {
			v = "" // gunicorn's - is stderr, hornbeam's default
		}
	case "umask":
		n, ok := v.(json.Number)
		i, err := n.Int64()
		if !ok || err != nil || i < 0 || i > 0o777 {
			return errors.New("want a number like 0o007")
		}
		if i == 0 {
			return nil // gunicorn's default
		}
		v = strconv.FormatInt(i, 8)
	case "bind", "pythonpath", "forwarded_allow_ips":
		if s, ok := v.(string); ok {
			v = []any{s}
			if k != "bind" {
				v = splitComma(s)
			}
		}
	}
	if list, ok := v.([]any); ok {
		sv, isSlice := f.Value.(pflag.SliceValue)
		if !isSlice {
			return errors.New("want a single value, not a list")
		}
		elems := make([]string, len(list))
		for i, e := range list {
			s, err := gunicornScalar(e)
			if err != nil {
				return err
			}
			elems[i] = s
		}
		if f.Name == "pythonpath" || f.Name == "forwarded-allow-ips" {
			var split []string
			for _, e := range elems {
				for _, p := range splitComma(e) {
					split = append(split, p.(string))
				}
			}
			elems = split
		}
		if err := sv.Replace(elems); err != nil {
			return err
		}
		f.Changed = true
		return nil
	}
	s, err := gunicornScalar(v)
	if err != nil {
		return err
	}
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		err = sv.Replace([]string{s})
		f.Changed = true
		return err
	}
	return fs.Set(f.Name, s)
}

func splitComma(s string) []any {
	var out []any
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// gunicornScalar is a setting's value as a flag's text.
func gunicornScalar(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case json.Number:
		return x.String(), nil
	}
	return "", fmt.Errorf("want a string, number or boolean, not %s", pyRepr(v))
}

// isGunicornDefault reports whether v is gunicorn's default for k (or
// None, False, "", [] or {}).
func isGunicornDefault(k string, v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case bool:
		if !x {
			return true
		}
	case string:
		if x == "" {
			return true
		}
	case []any:
		if len(x) == 0 {
			return true
		}
	case map[string]any:
		if len(x) == 0 {
			return true
		}
	}
	s, err := gunicornScalar(v)
	if err != nil {
		return false
	}
	for _, d := range gunicornDefaults[k] {
		if s == d {
			return true
		}
	}
	return false
}

// pyRepr writes a setting's value as Python would, for messages.
func pyRepr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case string:
		return strconv.Quote(x)
	case json.Number:
		return x.String()
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = pyRepr(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		if r, ok := x["__repr__"]; ok {
			return fmt.Sprint(r)
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = strconv.Quote(k) + ": " + pyRepr(x[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprint(v)
}

// Where each of gunicorn's server hooks runs in hornbeam.
var (
	// masterHooks run in a short-lived Python process with a stand-in
	// server (runHook).
	masterHooks = map[string]bool{"on_starting": true, "when_ready": true, "on_exit": true,
		"on_reload": true, "nworkers_changed": true, "pre_exec": true}
	// zygoteHooks run in the process-mode zygote (the process that forks
	// the workers), workerHooks in each process-mode worker.
	zygoteHooks = map[string]bool{"pre_fork": true, "child_exit": true}
	workerHooks = map[string]bool{"post_fork": true, "post_worker_init": true, "pre_request": true, "post_request": true, "worker_exit": true,
		"worker_int": true, "worker_abort": true}
)

// embeddedMode reports whether opts run the embedded workers (-k asgi
// does when no --worker-mode is given).
func embeddedMode(opts hornbeam.Options) bool {
	return opts.WorkerMode == hornbeam.ModeEmbedded || opts.WorkerMode == "" && opts.Interface == "asgi"
}

// workerSide reports whether the file defines a hook that runs in the
// process mode's zygote or workers.
func (g *gunConf) workerSide() bool {
	for _, h := range g.hooks {
		if zygoteHooks[h] || workerHooks[h] {
			return true
		}
	}
	return false
}

// defines reports whether the file defines hook name.
func (g *gunConf) defines(name string) bool {
	for _, h := range g.hooks {
		if h == name {
			return true
		}
	}
	return false
}

// hookWarnings are the warnings for the file's hooks that hornbeam will not
// call, given the options' worker mode.
func (g *gunConf) hookWarnings(opts hornbeam.Options) []string {

	var out []string
	for _, h := range g.hooks {
		switch {
		case masterHooks[h]:
		case zygoteHooks[h] || workerHooks[h]:
			if embeddedMode(opts) {
				out = append(out, fmt.Sprintf("warning: %s: hook %s is not called with --worker-mode embedded (the worker hooks run in the process mode)", g.path, h))
			}
		}
	}
	return out
}

// effective is the configuration as the hooks' stand-in cfg shows it,
// under gunicorn's names: the file's settings, then hornbeam's values.
func (c *config) gunicornCfg(opts hornbeam.Options) map[string]any {
	m := map[string]any{}
	if c.gconf != nil {
		for k, v := range c.gconf.settings {
			m[k] = v
		}
	}
	secs := func(d time.Duration) any {
		if d < 0 {
			return 0
		}
		if d%time.Second == 0 {
			return int64(d / time.Second)
		}
		return d.Seconds()
	}
	wd, _ := os.Getwd()
	for k, v := range map[string]any{
		"bind": opts.Bind, "workers": opts.Workers, "threads": opts.Threads, "timeout": secs(opts.Timeout),
		"graceful_timeout": secs(opts.GracefulTimeout), "keepalive": secs(opts.Keepalive),
		"max_requests": opts.MaxRequests, "max_requests_jitter": opts.MaxRequestsJitter, "worker_class": c.workerClass,
		"preload_app": opts.Preload, "reload": opts.ReloadOnChange, "chdir": wd, "pythonpath": strings.Join(opts.PythonPath, ","),
		"raw_env": c.env, "accesslog": nilIfEmpty(c.accessLog), "errorlog": orDash(c.errorLog), "loglevel": c.logLevel,
		"proc_name": nilIfEmpty(c.procName), "pidfile": nilIfEmpty(c.pidFile), "certfile": nilIfEmpty(opts.CertFile),
		"keyfile": nilIfEmpty(opts.KeyFile), "limit_request_line": opts.LimitRequestLine, "limit_request_fields": opts.LimitRequestFields,
		"limit_request_field_size": opts.LimitRequestFieldSize, "forwarded_allow_ips": opts.ForwardedAllowIPs,
		"proxy_protocol": opts.ProxyProtocol, "access_log_format": opts.AccessLogFormat,
	} {
		m[k] = v
	}
	return m
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// serverHooks are the gunicorn.conf.py hooks that run on the server's
// side; nil when there are none.
type serverHooks struct {
	python, location string
	defined          map[string]bool
	env              []string
	logf             func(errlog.Level, string, ...any) error
}

// prepareHooks sets up the file's hooks for this run: the environment that
// tells the process-mode zygote and workers the file (and the stand-in
// cfg), and the server-side hooks. Without a gunicorn.conf.py it does
// nothing and returns nil.
func (c *config) prepareHooks(opts hornbeam.Options, logf func(errlog.Level, string, ...any) error) *serverHooks {
	if c.gconf == nil || len(c.gconf.hooks) == 0 {
		return nil
	}
	cfg, _ := json.Marshal(c.gunicornCfg(opts))
	h := &serverHooks{python: opts.Python, location: c.gconf.location, defined: map[string]bool{}, logf: logf}
	for _, n := range c.gconf.hooks {
		h.defined[n] = true
	}
	os.Setenv("HORNBEAM_GUNICORN_CFG", string(cfg))
	if c.gconf.workerSide() && !embeddedMode(opts) {
		os.Setenv("HORNBEAM_GUNICORN_CONF", c.gconf.location) // the zygote runs the file for its hooks
	}
	path, _ := json.Marshal(opts.PythonPath)
	h.env = append(os.Environ(), "HORNBEAM_GUNICORN_PATH="+string(path), "HORNBEAM_GUNICORN_PID="+strconv.Itoa(os.Getpid()))
	return h
}

// run calls one server-side hook (on_starting, when_ready, on_exit,
// on_reload, nworkers_changed, pre_exec), if the file defines it, in a
// Python process of its own, with args after the server (JSON values);
// what it prints goes to the error log. It returns an error if the hook
// raised.
func (h *serverHooks) run(name string, args ...any) error {
	if h == nil || !h.defined[name] {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	argv := []string{"-c", pythonSource(), "hook", h.location, name}
	if len(args) > 0 {
		j, _ := json.Marshal(args)
		argv = append(argv, string(j))
	}
	cmd := exec.CommandContext(ctx, h.python, argv...)
	cmd.Env = h.env
	out, err := cmd.CombinedOutput()
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		level := errlog.Info
		for _, l := range []struct {
			tag string
			lvl errlog.Level
		}{{"[DEBUG] ", errlog.Debug}, {"[WARNING] ", errlog.Warning}, {"[ERROR] ", errlog.Error}, {"[CRITICAL] ", errlog.Error}, {"[INFO] ", errlog.Info}} {
			if rest, ok := strings.CutPrefix(line, l.tag); ok {
				line, level = rest, l.lvl
				break
			}
		}
		h.logf(level, "[%s] %s", name, line)
	}
	if err != nil {
		return fmt.Errorf("gunicorn.conf.py hook %s failed (%v)", name, err)
	}
	return nil
}

// printHooks adds the file's hooks to --print-config's output (as a
// comment: a TOML configuration has no hooks).
func (g *gunConf) printHooks(w io.Writer) {
	if g == nil || len(g.hooks) == 0 {
		return
	}
	fmt.Fprintf(w, "# hooks from %s (not in TOML: keep the file for them): %s\n", g.path, strings.Join(g.hooks, ", "))
}

// gunicornBind reads a bind address as gunicorn does: a host without a
// port is port 8000 (-b 0.0.0.0, as the Flask docs write it), tcp:// is
// dropped; fd://N is refused (socket activation instead).
func gunicornBind(b string) (string, error) {
	if strings.HasPrefix(b, "unix:") {
		return b, nil
	}
	if strings.HasPrefix(b, "fd://") {
		return "", usagef("--bind %s: hornbeam does not bind a descriptor by number; use systemd socket activation (LISTEN_FDS), which it reads (README: Deploying)", b)
	}
	b = strings.TrimPrefix(b, "tcp://")
	if _, _, err := net.SplitHostPort(b); err == nil {
		return b, nil
	}
	if strings.HasPrefix(b, "[") && strings.HasSuffix(b, "]") || !strings.Contains(b, ":") && b != "" {
		return b + ":8000", nil // gunicorn's default port
	}
	return b, nil // Validate says what is wrong with it
}
