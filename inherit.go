package hornbeam

import (
	"fmt"
	"net"
	"os"
	"strconv"
)

// InheritedListeners returns the listening sockets this process was given
// at start: by systemd socket activation (LISTEN_PID and LISTEN_FDS, the
// sockets from descriptor 3 on), or by a hornbeam that handed its sockets
// over on SIGUSR2 (HORNBEAM_INHERIT_FDS). The variables are removed from
// the environment so the workers do not see them. It returns nil when
// there are none.
func InheritedListeners() ([]net.Listener, error) {
	n := 0
	if pid, ok := os.LookupEnv("LISTEN_PID"); ok && pid == strconv.Itoa(os.Getpid()) {
		v, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
		if err != nil || v < 0 {
			return nil, fmt.Errorf("socket activation: bad LISTEN_FDS %q", os.Getenv("LISTEN_FDS"))
		}
		n = v
	} else if v, ok := os.LookupEnv("HORNBEAM_INHERIT_FDS"); ok {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 0 {
			return nil, fmt.Errorf("bad HORNBEAM_INHERIT_FDS %q", v)
		}
	}
	for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "HORNBEAM_INHERIT_FDS"} {
		os.Unsetenv(k)
	}
	var out []net.Listener
	for fd := 3; fd < 3+n; fd++ {
		f := os.NewFile(uintptr(fd), "inherited-listener-"+strconv.Itoa(fd))
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			for _, l := range out {
				l.Close()
			}
			return nil, fmt.Errorf("inherited descriptor %d is not a listening socket: %w", fd, err)
		}
		out = append(out, ln)
	}
	return out, nil
}

// ListenerFiles returns the server's listening sockets as files, in order,
// for handing them to another process (binary upgrade). The caller closes
// them.
func (s *Server) ListenerFiles() ([]*os.File, error) {
	var out []*os.File
	for _, ln := range s.listeners {
		fl, ok := ln.(interface{ File() (*os.File, error) })
		if !ok {
			return nil, fmt.Errorf("listener %s cannot be handed over", ln.Addr())
		}
		f, err := fl.File()
		if err != nil {
			return nil, fmt.Errorf("listener %s: %w", ln.Addr(), err)
		}
		out = append(out, f)
	}
	return out, nil
}
