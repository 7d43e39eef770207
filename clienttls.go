package hornbeam

// Client certificates (mTLS), the TLS 1.2 cipher suites, and the user the
// process-mode workers run as: gunicorn's --ca-certs/--cert-reqs,
// --ciphers and -u/-g.

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// WorkerUser is the user, group and supplementary groups the process-mode
// workers switch to after they are forked (and after gunicorn's post_fork
// hook), before they import the app; the server itself keeps its user.
type WorkerUser struct {
	UID, GID int
	Groups   []int // supplementary groups; nil: GID only
}

// env is the variable python/hornbeam/_worker.py reads.
func (u *WorkerUser) env() string {
	gs := make([]string, len(u.Groups))
	for i, g := range u.Groups {
		gs[i] = strconv.Itoa(g)
	}
	return fmt.Sprintf("HORNBEAM_WORKER_USER=%d:%d:%s", u.UID, u.GID, strings.Join(gs, ","))
}

// validateExtras checks the client certificate, cipher and worker user
// settings (Validate, after defaults).
func (o *Options) validateExtras() error {
	bad := func(setting, format string, args ...any) error {
		return &ConfigError{Setting: setting, Err: fmt.Errorf(format, args...)}
	}
	if o.ClientAuth != tls.NoClientCert && o.ClientCAFile == "" {
		return bad("--cert-reqs", "asks for client certificates but no CA verifies them: give the CA bundle with --ca-certs CA.pem")
	}
	if (o.ClientCAFile != "" || o.CipherSuites != nil) && o.CertFile == "" {
		setting := "--ca-certs"
		if o.ClientCAFile == "" {
			setting = "--ciphers"
		}
		return bad(setting, "needs TLS: give the server's certificate with --certfile (and --keyfile)")
	}
	if o.ClientCAFile != "" {
		if _, err := loadClientCAs(o.ClientCAFile); err != nil {
			return err
		}
	}
	return nil
}

// loadClientCAs reads the PEM bundle of CAs that client certificates must
// chain to.
func loadClientCAs(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &ConfigError{Setting: "--ca-certs", Err: err}
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, &ConfigError{Setting: "--ca-certs", Err: fmt.Errorf("%s holds no PEM certificate (want the CA bundle that signs the client certificates)", path)}
	}
	return pool, nil
}

// applyTLSExtras sets the client certificate policy and the cipher suites
// on the server's TLS configuration.
func (o *Options) applyTLSExtras(conf *tls.Config) error {
	if o.CipherSuites != nil {
		conf.CipherSuites = o.CipherSuites
	}
	if o.ClientCAFile != "" {
		pool, err := loadClientCAs(o.ClientCAFile)
		if err != nil {
			return err
		}
		conf.ClientCAs = pool
		conf.ClientAuth = o.ClientAuth
	}
	return nil
}

// workerEnv is the process-mode workers' environment: nil (this
// process's) unless they switch user.
func workerEnv(u *WorkerUser) []string {
	if u == nil {
		return nil
	}
	return append(os.Environ(), u.env())
}
