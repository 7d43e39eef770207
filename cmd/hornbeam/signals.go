package main

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/hornbeam-go/hornbeam"
	"github.com/hornbeam-go/hornbeam/errlog"
)

// operatorSignals are the signals hornbeam acts on:
//
//	SIGTERM, SIGINT    stop gracefully (a second SIGINT: at once)
//	SIGQUIT            stop at once
//	SIGHUP             reload the workers
//	SIGTTIN, SIGTTOU   one worker more, one fewer
//	SIGUSR1            reopen the log files
//	SIGUSR2            binary upgrade
var operatorSignals = []os.Signal{
	syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP,
	syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGUSR1, syscall.SIGUSR2,
}

// signalName is a signal as operators write it ("SIGTTIN"; String() would
// say "stopped (tty input)").
func signalName(sig os.Signal) string {
	names := map[os.Signal]string{
		syscall.SIGTERM: "SIGTERM", syscall.SIGINT: "SIGINT", syscall.SIGQUIT: "SIGQUIT", syscall.SIGHUP: "SIGHUP",
		syscall.SIGTTIN: "SIGTTIN", syscall.SIGTTOU: "SIGTTOU", syscall.SIGUSR1: "SIGUSR1", syscall.SIGUSR2: "SIGUSR2",
	}
	if n, ok := names[sig]; ok {
		return n
	}
	return sig.String()
}

// control carries out the operator's signals for the whole run, from
// before anything is bound until the process exits:
//
//   - SIGTERM or SIGINT ends stopCtx: the boot is abandoned, or the server
//     stops gracefully. A second SIGINT, or a SIGQUIT at any time, also
//     ends cutCtx: the graceful stop ends at once.
//   - SIGHUP, SIGTTIN, SIGTTOU and SIGUSR2 received while the workers boot
//     are kept and carried out, in order, once the server serves.
//   - SIGUSR1 reopens the log files at once.
type control struct {
	log     *errlog.Writer
	files   []*errlog.File // log files SIGUSR1 reopens
	stopCtx context.Context
	stop    context.CancelFunc
	cutCtx  context.Context
	cut     context.CancelFunc
	quit    chan struct{}

	mu       sync.Mutex
	srv      *hornbeam.Server // nil until it serves
	hooks    *serverHooks     // gunicorn.conf.py's on_reload, nworkers_changed, pre_exec (nil: none)
	deferred []os.Signal      // received while booting
	stopSig  os.Signal        // the first stop signal, nil until then
	wg       sync.WaitGroup   // handlers running
}

func newControl(log *errlog.Writer, files []*errlog.File) *control {
	c := &control{log: log, quit: make(chan struct{})}
	for _, f := range files {
		if f != nil {
			c.files = append(c.files, f)
		}
	}
	c.stopCtx, c.stop = context.WithCancel(context.Background())
	c.cutCtx, c.cut = context.WithCancel(context.Background())
	return c
}

// loop handles the signals until close.
func (c *control) loop(sigs <-chan os.Signal) {
	for {
		select {
		case sig := <-sigs:
			c.handle(sig)
		case <-c.quit:
			return
		}
	}
}

// close ends loop, waits for the handlers still running (a reload ends
// with stopCtx) and releases the contexts.
func (c *control) close() {
	close(c.quit)
	c.stop()
	c.wg.Wait()
	c.cut()
}

// stopSignal names the signal that stopped the server.
func (c *control) stopSignal() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopSig == nil {
		return "a signal"
	}
	return signalName(c.stopSig)
}

// stopping marks the server as stopping for a reason of its own: signals
// asking for work are ignored from now on.
func (c *control) stopping() {
	c.mu.Lock()
	if c.stopSig == nil {
		c.stopSig = syscall.SIGTERM
	}
	c.mu.Unlock()
	c.stop()
}

func (c *control) handle(sig os.Signal) {
	name := signalName(sig)
	switch sig {
	case syscall.SIGUSR1:
		c.reopen()
		return
	case syscall.SIGQUIT:
		c.mu.Lock()
		if c.stopSig == nil {
			c.stopSig = sig
		}
		c.mu.Unlock()
		c.log.Logf(errlog.Warning, "SIGQUIT: stopping at once; requests in flight are cut")
		c.stop()
		c.cut()
		return
	case syscall.SIGTERM, syscall.SIGINT:
		c.mu.Lock()
		first := c.stopSig == nil
		if first {
			c.stopSig = sig
		}
		c.mu.Unlock()
		switch {
		case first:
			c.stop() // run logs the shutdown
		case sig == syscall.SIGINT:
			c.log.Logf(errlog.Warning, "SIGINT again: stopping at once; requests in flight are cut")
			c.cut()
		default:
			c.log.Logf(errlog.Info, "%s: already stopping (a SIGINT or a SIGQUIT stops at once)", name)
		}
		return
	}
	c.mu.Lock()
	srv, stopping := c.srv, c.stopSig != nil
	if srv == nil && !stopping {
		c.deferred = append(c.deferred, sig)
	}
	c.mu.Unlock()
	switch {
	case stopping:
		c.log.Logf(errlog.Info, "%s ignored: the server is stopping", name)
	case srv == nil:
		c.log.Logf(errlog.Info, "%s received while the workers boot: carried out once they are ready", name)
	default:
		c.run(srv, []os.Signal{sig})
	}
}

// serving hands the started server over, and carries out what was asked
// while it booted.
func (c *control) serving(srv *hornbeam.Server) {
	c.mu.Lock()
	c.srv = srv
	pending := c.deferred
	c.deferred = nil
	c.mu.Unlock()
	// A reload asked for twice is one reload.
	var todo []os.Signal
	for _, sig := range pending {
		if sig == syscall.SIGHUP && len(todo) > 0 && todo[len(todo)-1] == syscall.SIGHUP {
			continue
		}
		todo = append(todo, sig)
	}
	if len(todo) > 0 {
		c.run(srv, todo)
	}
}

// run carries out sigs one after the other, in the background.
func (c *control) run(srv *hornbeam.Server, sigs []os.Signal) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for _, sig := range sigs {
			if c.stopCtx.Err() != nil {
				return
			}
			handleSignal(c.stopCtx, srv, sig, c.hooks, c.log.Logf)
		}
	}()
}

// reopen reopens the log files (SIGUSR1, after logrotate renamed them).
func (c *control) reopen() {
	if len(c.files) == 0 {
		c.log.Logf(errlog.Info, "SIGUSR1: no log file to reopen (the logs go to stdout or stderr)")
		return
	}
	var paths []string
	for _, f := range c.files {
		if err := f.Reopen(); err != nil {
			c.log.Logf(errlog.Error, "SIGUSR1: cannot reopen %s, still writing to the old file: %v", f.Path(), err)
			continue
		}
		paths = append(paths, f.Path())
	}
	if len(paths) > 0 {
		c.log.Logf(errlog.Info, "SIGUSR1: reopened %s", strings.Join(paths, " and "))
	}
}

// handleSignal carries out an operator's request for work: SIGHUP,
// SIGTTIN, SIGTTOU or SIGUSR2.
func handleSignal(ctx context.Context, srv *hornbeam.Server, sig os.Signal, hooks *serverHooks, logf func(errlog.Level, string, ...any) error) {
	hook := func(name string, args ...any) {
		if err := hooks.run(name, args...); err != nil {
			logf(errlog.Error, "%v", err) // as gunicorn: logged, and the work goes on
		}
	}
	switch sig {
	case syscall.SIGHUP:
		logf(errlog.Info, "SIGHUP: reloading the workers")
		hook("on_reload")
		// A failure is logged by the pool, with the traceback: once.
		srv.Reload(ctx)
	case syscall.SIGTTIN, syscall.SIGTTOU:
		delta := 1
		if sig == syscall.SIGTTOU {
			delta = -1
		}
		old := srv.Pool().Target()
		n, err := srv.Scale(ctx, delta)
		if err != nil {
			logf(errlog.Error, "%s: scaling failed: %v", signalName(sig), err)
		}
		logf(errlog.Info, "%s: %d workers wanted", signalName(sig), n)
		if n != old {
			hook("nworkers_changed", n, old)
		}
	case syscall.SIGUSR2:
		hook("pre_exec")
		pid, err := upgrade(srv)
		if err != nil {
			logf(errlog.Error, "SIGUSR2: binary upgrade failed: %v", err)
			return
		}
		logf(errlog.Info, "SIGUSR2: started a new hornbeam (pid %d) on the same sockets; send SIGTERM to this one (pid %d) once it serves", pid, os.Getpid())
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
