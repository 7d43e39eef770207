package wsgiembed

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hornbeam-go/hornbeam/internal/wire"
	"github.com/hornbeam-go/hornbeam/pymarshal"
)

// Load starts the process's one interpreter: what needs another Config
// runs in a child process, this test binary again with HB_EMBED_CHILD set.
func child(t *testing.T, scenario string) string {
	t.Helper()
	testApp(t) // skips, with the reason, when libpython is missing
	cmd := exec.Command(os.Args[0], "-test.run=^TestChild$", "-test.v")
	cmd.Env = append(os.Environ(), "HB_EMBED_CHILD="+scenario)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child %s: %v\n%s", scenario, err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if r, ok := strings.CutPrefix(line, "RESULT "); ok {
			return r
		}
	}
	t.Fatalf("child %s: no RESULT in:\n%s", scenario, out)
	return ""
}

// TestChild is the child's side of child(); it does nothing in a normal run.
func TestChild(t *testing.T) {
	scenario := os.Getenv("HB_EMBED_CHILD")
	if scenario == "" {
		t.Skip("runs only as a child process of the other tests")
	}
	cfg := Config{Python: debianPython, App: "embedtest:application", PythonPath: []string{"testdata", "../testdata/apps", "../examples"}}
	switch scenario {
	case "state":
		// A state socket served as the server serves it: incr answers 40 + delta.
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		cc, err := wire.NewCallConn(fds[0])
		if err != nil {
			t.Fatal(err)
		}
		go cc.Serve(func(p []byte) []byte {
			v, _ := pymarshal.Unmarshal(p)
			call, _ := v.(pymarshal.Tuple)
			var reply any = pymarshal.Tuple{false, "ValueError", fmt.Sprintf("unexpected call %v", v)}
			if len(call) == 3 && call[0] == "incr" && call[1] == "hits" {
				reply = pymarshal.Tuple{true, 40 + call[2].(int64)}
			}
			b, _ := pymarshal.Marshal(reply)
			return b
		})
		cfg.StateFD = fds[1]
		s := childServer(t, cfg)
		_, body := get(t, s.URL+"/state-incr", "extra")
		fmt.Printf("RESULT %s\n", body)
	case "threads":
		cfg.Threads = 4
		s := childServer(t, cfg)
		_, body := get(t, s.URL+"/", "echo")
		multithread := strings.Contains(body, `"wsgi.multithread": true`)
		t0 := time.Now()
		var wg sync.WaitGroup
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				get(t, s.URL+"/sleep?s=0.3", "")
			}()
		}
		wg.Wait()
		fmt.Printf("RESULT multithread=%v 4x0.3s=%.1fs\n", multithread, time.Since(t0).Seconds())
	case "signal-at-import":
		cfg.App = "signals_at_import:application"
		app, err := Load(cfg)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("RESULT %v\n", app.SignalHandlers)
	case "missing-module", "import-raises", "import-exits", "not-callable", "no-attribute", "missing-runtime":
		switch scenario {
		case "missing-module":
			cfg.App = "no_such_app_module:application"
		case "import-raises":
			cfg.App = "raises_at_import:application"
		case "import-exits":
			cfg.App = "exits_at_import:application"
		case "not-callable":
			cfg.App = "sys:version"
		case "no-attribute":
			cfg.App = "embedtest:nonexistent"
		case "missing-runtime":
			cfg.RuntimeDir = t.TempDir()
		}
		_, err := Load(cfg)
		var ie *ImportError
		fmt.Printf("RESULT importerror=%v %q\n", errors.As(err, &ie), err)
	}
}

func childServer(t *testing.T, cfg Config) *httptest.Server {
	app, err := Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewServer(&Handler{App: app, ErrorLog: nil})
	t.Cleanup(s.Close)
	return s
}

// TestStateSocket: with StateFD, hornbeam.state_* calls go to the server
// over the state socket, as from a worker process.
func TestStateSocket(t *testing.T) {
	if got := child(t, "state"); got != "42" {
		t.Errorf("state_incr through the socket: %q, want 42", got)
	}
}

// TestThreads: Threads 4 runs four requests that release the GIL at once,
// and the app sees wsgi.multithread True.
func TestThreads(t *testing.T) {
	got := child(t, "threads")
	var mt bool
	var secs float64
	fmt.Sscanf(got, "multithread=%t 4x0.3s=%fs", &mt, &secs)
	if !mt || secs > 0.9 {
		t.Errorf("%s", got)
	}
}

// TestSignalHandlersAtImport: a Python signal handler installed by the app
// at import is reported (it replaced the process's handler and never runs).
func TestSignalHandlersAtImport(t *testing.T) {
	if got := child(t, "signal-at-import"); got != "[SIGUSR2]" {
		t.Errorf("SignalHandlers %s, want [SIGUSR2]", got)
	}
}

// TestImportErrors: an app that cannot be imported gives an *ImportError
// with the traceback, and a hint for a module not found.
func TestImportErrors(t *testing.T) {
	for scenario, want := range map[string][]string{
		"missing-module":  {"importerror=true", "ModuleNotFoundError: No module named 'no_such_app_module'", "is --python the interpreter that has your packages? Debian's is /usr/bin/python3"},
		"import-raises":   {"importerror=true", "RuntimeError: broken at import", "raises_at_import.py"},
		"import-exits":    {"importerror=true", "SystemExit: 2"},
		"not-callable":    {"importerror=true", "sys:version is a str, not a WSGI callable"},
		"no-attribute":    {"importerror=true", "has no attribute 'nonexistent'"},
		"missing-runtime": {"importerror=false", "hornbeam's Python runtime"},
	} {
		got := child(t, scenario)
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: %s\nlacks %q", scenario, got, w)
			}
		}
	}
}
