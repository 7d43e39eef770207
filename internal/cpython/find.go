package cpython

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Install describes a Python interpreter and the shared libpython that
// embeds it, as the interpreter itself reports them.
type Install struct {
	Python     string // the interpreter as given (a venv's DIR/bin/python, a name on PATH)
	Executable string // its sys.executable: the program name the embedded interpreter gets
	Version    string // "3.11.2"
	Major      int
	Minor      int
	Prefix     string // sys.prefix (a venv's directory for a venv)
	BasePrefix string // sys.base_prefix
	Library    string // the shared libpython to load
}

// NoSharedLibError is Find's error for an interpreter without a shared
// libpython: the caller can run the app in worker processes instead.
type NoSharedLibError struct {
	Python, Executable, Version string
	Looked                      []string // the files tried
	Hint                        string   // what to install or rebuild
}

func (e *NoSharedLibError) Error() string {
	looked := "it reports none"
	if len(e.Looked) > 0 {
		looked = "looked for " + strings.Join(e.Looked, ", ")
	}
	return fmt.Sprintf("%s (%s, Python %s) has no shared libpython to embed (%s): %s",
		e.Python, e.Executable, e.Version, looked, e.Hint)
}

// probeScript prints what Find needs as one JSON line.
const probeScript = `import json, sys, sysconfig
v = sysconfig.get_config_var
print(json.dumps({
    "executable": sys.executable, "version": sys.version.split()[0],
    "major": sys.version_info[0], "minor": sys.version_info[1],
    "prefix": sys.prefix, "base_prefix": getattr(sys, "base_prefix", sys.prefix),
    "shared": v("Py_ENABLE_SHARED"), "libdir": v("LIBDIR"), "libpl": v("LIBPL"),
    "multiarch": v("MULTIARCH"), "ldlibrary": v("LDLIBRARY"), "instsoname": v("INSTSONAME"),
    "abiflags": getattr(sys, "abiflags", ""), "gil": v("Py_GIL_DISABLED"),
}))
`

type probe struct {
	Executable string `json:"executable"`
	Version    string `json:"version"`
	Major      int    `json:"major"`
	Minor      int    `json:"minor"`
	Prefix     string `json:"prefix"`
	BasePrefix string `json:"base_prefix"`
	Shared     any    `json:"shared"`
	LibDir     string `json:"libdir"`
	LibPL      string `json:"libpl"`
	Multiarch  string `json:"multiarch"`
	LDLibrary  string `json:"ldlibrary"`
	InstSOName string `json:"instsoname"`
	ABIFlags   string `json:"abiflags"`
	GIL        any    `json:"gil"`
}

// Find runs the interpreter once and finds the shared libpython it was
// built with. An interpreter without one gives a *NoSharedLibError saying
// what to install.
func Find(python string) (*Install, error) {
	inst, p, err := probeInterpreter(python)
	if err != nil {
		return nil, err
	}
	looked := libraryCandidates(p)
	for _, f := range looked {
		if st, err := os.Stat(f); err == nil && !st.IsDir() {
			inst.Library = f
			return inst, nil
		}
	}
	e := &NoSharedLibError{Python: python, Executable: inst.Executable, Version: p.Version, Looked: looked}
	ver := fmt.Sprintf("%d.%d", p.Major, p.Minor)
	switch {
	case !truthy(p.Shared) && !strings.HasPrefix(p.BasePrefix, "/usr"):
		e.Hint = "it was built without --enable-shared; rebuild it with it (pyenv: PYTHON_CONFIGURE_OPTS=--enable-shared pyenv install " + p.Version + "), or use another interpreter"
	case fileExists("/etc/debian_version"):
		e.Hint = "install it with: apt-get install libpython" + ver
	default:
		e.Hint = "install your distribution's libpython" + ver + " package (the shared library, not the headers)"
	}
	return nil, e
}

// Probe runs the interpreter once and describes it, without looking for a
// shared libpython (Install.Library stays empty): for an interpreter that
// is to host the worker library rather than be loaded (RunHosted).
func Probe(python string) (*Install, error) {
	inst, _, err := probeInterpreter(python)
	return inst, err
}

func probeInterpreter(python string) (*Install, *probe, error) {
	if python == "" {
		python = "python3"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-c", probeScript)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg != "" {
			msg = ": " + msg
		}
		return nil, nil, fmt.Errorf("running %s to describe it: %v%s", python, err, msg)
	}
	var p probe
	if err := json.Unmarshal(bytes.TrimSpace(out), &p); err != nil {
		return nil, nil, fmt.Errorf("running %s to describe it: unexpected output %q", python, out)
	}
	inst := &Install{
		Python: python, Executable: p.Executable, Version: p.Version, Major: p.Major, Minor: p.Minor,
		Prefix: p.Prefix, BasePrefix: p.BasePrefix,
	}
	if inst.Executable == "" {
		inst.Executable = python
	}
	if p.Major != 3 || p.Minor < 8 {
		return nil, nil, fmt.Errorf("%s is Python %s: the embedded mode needs CPython 3.8 or later", python, p.Version)
	}
	if truthy(p.GIL) || strings.Contains(p.ABIFlags, "t") {
		return nil, nil, fmt.Errorf("%s is a free-threaded build (Python %s%s), which the embedded mode does not support yet", python, p.Version, p.ABIFlags)
	}
	return inst, &p, nil
}

// libraryCandidates lists the files that may be the interpreter's shared
// libpython, most likely first. Debian's LDLIBRARY names the unversioned
// link of the -dev package; the runtime package has INSTSONAME.
func libraryCandidates(p *probe) []string {
	var names []string
	for _, n := range []string{p.InstSOName, p.LDLibrary} {
		if n != "" && strings.Contains(n, ".so") && !contains(names, n) {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		names = append(names, fmt.Sprintf("libpython%d.%d%s.so.1.0", p.Major, p.Minor, p.ABIFlags))
	}
	var dirs []string
	add := func(d string) {
		if d != "" && !contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	add(p.LibDir)
	if p.LibDir != "" && p.Multiarch != "" {
		add(filepath.Join(p.LibDir, p.Multiarch))
	}
	add(filepath.Join(p.BasePrefix, "lib"))
	add(p.LibPL)
	var out []string
	for _, d := range dirs {
		for _, n := range names {
			out = append(out, filepath.Join(d, n))
		}
	}
	return out
}

func truthy(v any) bool {
	switch x := v.(type) {
	case float64:
		return x != 0
	case string:
		return x != "" && x != "0"
	case bool:
		return x
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// IsNoSharedLib reports whether err says the interpreter has no shared
// libpython (the caller should fall back to worker processes).
func IsNoSharedLib(err error) bool {
	var e *NoSharedLibError
	return errors.As(err, &e)
}
