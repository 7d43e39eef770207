package worker

import (
	"fmt"
	"runtime/debug"
)

// LibraryName is the file name of the worker built as a shared library
// (go build -buildmode=c-shared -o hornbeam-worker.so ./cmd/hornbeam-worker),
// which the server looks for beside its own binary.
const LibraryName = "hornbeam-worker.so"

// hostedLauncher is the whole Python side of starting a hosted worker: the
// interpreter switches user if -u/-g say so (before anything else, as a
// process-mode worker does; hornbeam's runtime is argv[2]), then loads the
// library and gives it its main thread (ctypes releases the GIL for the
// call). A worker that failed exits at once; one that finished normally
// lets Python finalise (atexit handlers run).
const hostedLauncher = `import ctypes, os, sys
if os.environ.get("HORNBEAM_WORKER_USER"):
    sys.path.insert(0, sys.argv[2])
    from hornbeam._gunicorn_conf import drop_privileges
    drop_privileges()
    del sys.path[0]
rc = ctypes.CDLL(sys.argv[1]).HornbeamWorker()
sys.stdout.flush(); sys.stderr.flush()
if rc:
    os._exit(rc)
`

// HostedArgs are the arguments that make an interpreter run the worker
// library lib, with hornbeam's Python runtime in runtimeDir: python3
// HostedArgs(...)... (-u: unbuffered, as the other workers; -I would drop
// PYTHONPATH and the user's site directory, which the app may need, so it
// is not used).
func HostedArgs(lib, runtimeDir string) []string {
	return []string{"-u", "-c", hostedLauncher, lib, runtimeDir}
}

// BuildID identifies the source a binary was built from (its VCS revision,
// "+modified" for a tree with changes), or "" when the build did not
// record it (go test binaries, builds outside a checkout). A worker library
// from another revision than the server is refused: the two speak the
// worker protocol of their own revision.
func BuildID() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+modified"
			}
		}
	}
	if rev == "" {
		return ""
	}
	return rev + modified
}

// checkBuild refuses a worker built from another revision than its server.
func checkBuild(server string) error { return checkBuildAgainst(server, BuildID()) }

func checkBuildAgainst(server, own string) error {
	if server == "" || own == "" || server == own {
		return nil
	}
	return fmt.Errorf("this worker (%s) was built from revision %s but the server from %s: rebuild it beside the hornbeam binary with: go build -buildmode=c-shared -o %s ./cmd/hornbeam-worker", LibraryName, own, server, LibraryName)
}
