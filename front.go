package hornbeam

import (
	"context"
	"crypto/tls"
	"fmt"
	"log"
	"net"
	"net/http"
	"sort"

	"github.com/hornbeam-go/hornbeam/accesslog"
	"github.com/hornbeam-go/hornbeam/httpguard"
	"github.com/hornbeam-go/hornbeam/proxy"
	"github.com/hornbeam-go/hornbeam/static"
)

// frontend is the HTTP serving both worker modes share: the handler chain
// around the app and the http.Server with its listener wrapping. In the
// process mode this process serves the listeners with it; in the embedded
// mode every worker builds the same from the settings it is passed.
type frontend struct {
	opts    *Options
	trust   *proxy.Trust
	http    *http.Server
	tlsConf *tls.Config
}

// newFrontend builds the serving stack for app. ready counts the workers
// ready, for --health-path.
func newFrontend(o *Options, trust *proxy.Trust, app http.Handler, errorLog *log.Logger, ready func() int) (*frontend, error) {
	handler, err := frontChain(o, trust, app, ready)
	if err != nil {
		return nil, err
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(true)
	protos.SetUnencryptedHTTP2(true)
	f := &frontend{opts: o, trust: trust}
	f.http = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		IdleTimeout:       o.Keepalive,
		MaxHeaderBytes:    o.LimitRequestLine + o.LimitRequestFields*(o.LimitRequestFieldSize+2) + 4096,
		ErrorLog:          log.New(&filteredLog{errorLog}, "", 0),
		Protocols:         &protos,
	}
	f.http.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		ctx = httpguard.ConnContext(ctx, c) // for limits and ClientGone
		if o.ProxyProtocol {
			ctx = proxy.ConnContext(ctx, httpguard.Beneath(c)) // it looks for its own connection type
		}
		return ctx
	}
	if o.CertFile != "" {
		cert, err := loadCertificate(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, err
		}
		f.tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
		if err := o.applyTLSExtras(f.tlsConf); err != nil {
			return nil, err
		}
		// Serve fills in http.Server.TLSConfig when it sets up HTTP/2;
		// the listeners use f.tlsConf, decided here once.
		f.http.TLSConfig = f.tlsConf
	}
	return f, nil
}

// listener wraps a listening socket as it is served: the PROXY protocol
// header first, then the guard, which reads HTTP/1.x as the client sent it
// (its TLS listener does the handshakes).
func (f *frontend) listener(ln net.Listener) net.Listener {
	if f.opts.ProxyProtocol {
		ln = proxy.Listener(ln, f.trust, f.opts.ReadHeaderTimeout)
	}
	if f.tlsConf != nil {
		return httpguard.TLSListener(ln, f.tlsConf, f.opts.ReadHeaderTimeout, f.http.ErrorLog)
	}
	return httpguard.Listener(ln)
}

// frontChain wraps the app, outermost first: the limits (on the request as
// the client sent it), trusted proxy headers (so everything after sees the
// real client), the request id, the access log, the health check, then
// static files and the app.
func frontChain(o *Options, trust *proxy.Trust, app http.Handler, ready func() int) (http.Handler, error) {
	statics := append([]string(nil), o.Static...)
	// The longest prefix must be tried first, so it is wrapped last.
	sort.Slice(statics, func(i, j int) bool { return len(statics[i]) < len(statics[j]) })
	h := app
	for _, m := range statics {
		prefix, dir, err := static.ParseMapping(m)
		if err != nil {
			return nil, fmt.Errorf("--static %q: %w", m, err)
		}
		sh, err := static.New(prefix, dir)
		if err != nil {
			return nil, fmt.Errorf("--static %q: %w", m, err)
		}
		h = sh.Wrap(h)
	}
	if o.HealthPath != "" {
		h = health(o.HealthPath, h, ready)
	}
	if o.AccessLog != nil {
		l, err := accesslog.New(o.AccessLog, o.AccessLogFormat, o.AccessLogJSON)
		if err != nil {
			return nil, fmt.Errorf("--access-logformat: %w", err)
		}
		h = l.Handler(h)
	}
	h = accesslog.RequestID(h)
	h = trust.Handler(h)
	return &limits{opts: o, next: h}, nil
}

// health answers path itself: 200 while at least one worker is ready.
func health(path string, next http.Handler, ready func() int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if n := ready(); n > 0 {
			fmt.Fprintf(w, "ok: %d workers ready\n", n)
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "unavailable: no worker is ready")
	})
}
