package main

// gunicorn's --cert-reqs and --ciphers (OpenSSL's cipher names mapped to
// Go's suites) and -u/--user, -g/--group, --initgroups (the process-mode
// workers switch user after they are forked).

import (
	"crypto/tls"
	"fmt"
	"os"
	"os/user"
	"sort"
	"strconv"
	"strings"

	"github.com/hornbeam-go/hornbeam"
)

// certReqs is --cert-reqs: gunicorn's numbers (ssl.CERT_NONE, CERT_OPTIONAL,
// CERT_REQUIRED) or their names.
type certReqs struct{ a *tls.ClientAuthType }

func (v certReqs) String() string {
	switch *v.a {
	case tls.VerifyClientCertIfGiven:
		return "1"
	case tls.RequireAndVerifyClientCert:
		return "2"
	}
	return "0"
}

func (v certReqs) Type() string { return "int" }

func (v certReqs) Set(s string) error {
	switch strings.ToLower(strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(s)), "CERT_")) {
	case "0", "none":
		*v.a = tls.NoClientCert
	case "1", "optional":
		*v.a = tls.VerifyClientCertIfGiven
	case "2", "required":
		*v.a = tls.RequireAndVerifyClientCert
	default:
		return fmt.Errorf("want 0 (none), 1 (optional) or 2 (required)")
	}
	return nil
}

// tlsAndUser reads --ciphers into the options, warns about --ca-certs
// without --cert-reqs (no effect, as in gunicorn), and resolves -u/-g.
func (c *config) tlsAndUser() error {
	if c.ciphers != "" {
		suites, warnings, err := parseCiphers(c.ciphers)
		if err != nil {
			return usagef("--ciphers %q: %v", c.ciphers, err)
		}
		c.opts.CipherSuites = suites
		for _, w := range warnings {
			c.ignored = append(c.ignored, "warning: --ciphers: "+w)
		}
	}
	if c.opts.ClientCAFile != "" && c.opts.ClientAuth == tls.NoClientCert {
		c.ignored = append(c.ignored, "warning: --ca-certs has no effect without --cert-reqs 1 (optional) or 2 (required): clients are not asked for a certificate (as in gunicorn)")
	}
	u, err := workerUser(c.user, c.group, c.initgroups)
	if err != nil {
		return err
	}
	c.opts.WorkerUser = u
	if c.initgroups && c.user == "" {
		c.ignored = append(c.ignored, "warning: --initgroups has no effect without --user")
	}
	return nil
}

// workerUser resolves -u/-g: nil when the workers keep the server's user.
// Without -g the group is the user's primary group; the supplementary
// groups are the user's with --initgroups, else none but the group (gunicorn
// keeps the server's). Only root can switch: anyone else gets a refusal,
// unless -u/-g name who it already is.
func workerUser(name, group string, initgroups bool) (*hornbeam.WorkerUser, error) {
	if name == "" && group == "" {
		return nil, nil
	}
	uid, gid := os.Geteuid(), os.Getegid()
	var u *user.User
	if name != "" {
		var err error
		if _, nerr := strconv.Atoi(name); nerr == nil {
			u, err = user.LookupId(name)
		} else {
			u, err = user.Lookup(name)
		}
		if err != nil {
			if n, nerr := strconv.Atoi(name); nerr == nil && n >= 0 {
				uid = n // a uid with no passwd entry, as gunicorn allows; its group: -g, or the same number
				gid = n
			} else {
				return nil, usagef("--user %q: %v (give a user name or a numeric uid)", name, err)
			}
		} else {
			uid, _ = strconv.Atoi(u.Uid)
			gid, _ = strconv.Atoi(u.Gid)
		}
	}
	if group != "" {
		if n, err := strconv.Atoi(group); err == nil && n >= 0 {
			gid = n
		} else if g, err := user.LookupGroup(group); err == nil {
			gid, _ = strconv.Atoi(g.Gid)
		} else {
			return nil, usagef("--group %q: %v (give a group name or a numeric gid)", group, err)
		}
	}
	wu := &hornbeam.WorkerUser{UID: uid, GID: gid}
	if initgroups && u != nil {
		ids, err := u.GroupIds()
		if err != nil {
			return nil, usagef("--initgroups: the groups of %s: %v", name, err)
		}
		for _, s := range ids {
			if n, err := strconv.Atoi(s); err == nil {
				wu.Groups = append(wu.Groups, n)
			}
		}
	}
	if os.Geteuid() != 0 {
		if uid == os.Geteuid() && gid == os.Getegid() && !initgroups {
			return nil, nil // already that user and group
		}
		what := "--user " + name
		if name == "" {
			what = "--group " + group
		}
		return nil, usagef("%s: hornbeam runs as uid %d, not root, so it cannot switch its workers to uid %d, gid %d; start it as root (it binds, then the workers switch), or start it as that user and leave out -u/-g (systemd User=, docker --user)", what, os.Geteuid(), uid, gid)
	}
	return wu, nil
}

// opensslCiphers maps OpenSSL's names of the TLS 1.2 suites Go offers to
// Go's IDs (IANA names are taken too).
var opensslCiphers = map[string]uint16{
	"ECDHE-ECDSA-AES128-GCM-SHA256": tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-RSA-AES128-GCM-SHA256":   tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-ECDSA-AES256-GCM-SHA384": tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-RSA-AES256-GCM-SHA384":   tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-ECDSA-CHACHA20-POLY1305": tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-RSA-CHACHA20-POLY1305":   tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-ECDSA-AES128-SHA":        tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
	"ECDHE-RSA-AES128-SHA":          tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	"ECDHE-ECDSA-AES256-SHA":        tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	"ECDHE-RSA-AES256-SHA":          tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	"AES128-GCM-SHA256":             tls.TLS_RSA_WITH_AES_128_GCM_SHA256,
	"AES256-GCM-SHA384":             tls.TLS_RSA_WITH_AES_256_GCM_SHA384,
	"AES128-SHA":                    tls.TLS_RSA_WITH_AES_128_CBC_SHA,
	"AES256-SHA":                    tls.TLS_RSA_WITH_AES_256_CBC_SHA,
}

// opensslInsecure are OpenSSL's names of suites Go implements but
// considers insecure (CBC with SHA-256, 3DES, RC4): left out, with a warning.
var opensslInsecure = map[string]bool{
	"ECDHE-ECDSA-AES128-SHA256": true, "ECDHE-RSA-AES128-SHA256": true, "AES128-SHA256": true, "DES-CBC3-SHA": true,
	"ECDHE-RSA-DES-CBC3-SHA": true, "RC4-SHA": true, "ECDHE-RSA-RC4-SHA": true, "ECDHE-ECDSA-RC4-SHA": true,
}

// opensslExclusions are the OpenSSL cipher-list keywords that, after "!"
// or "-", remove nothing Go would offer from a list of names: they are
// accepted and have no effect.
var opensslExclusions = map[string]bool{
	"aNULL": true, "eNULL": true, "NULL": true, "MD5": true, "RC4": true, "DSS": true, "aDSS": true, "PSK": true,
	"SRP": true, "EXP": true, "EXPORT": true, "LOW": true, "DES": true, "3DES": true, "CAMELLIA": true, "SEED": true,
	"IDEA": true, "ADH": true, "AECDH": true, "KRB5": true, "DHE": true, "EDH": true, "kDHE": true, "kEDH": true,
	"aECDH": true, "kECDH": true, "DH": true, "ARIA": true,
}

// parseCiphers maps an OpenSSL cipher list ("A:B:!C", as gunicorn's
// --ciphers takes) to Go's TLS 1.2 suites. Names Go lacks (DHE, CCM, ARIA,
// ...) and TLS 1.3 names (always Go's) are left out with a warning; an
// OpenSSL keyword (HIGH, DEFAULT, ECDHE+AESGCM, @STRENGTH) cannot be
// evaluated and is an error saying what to write.
func parseCiphers(s string) (suites []uint16, warnings []string, err error) {
	byName := map[string]uint16{}
	for _, cs := range tls.CipherSuites() {
		byName[cs.Name] = cs.ID
	}
	insecure := map[string]bool{}
	for _, cs := range tls.InsecureCipherSuites() {
		insecure[cs.Name] = true
	}
	tls13 := map[uint16]bool{tls.TLS_AES_128_GCM_SHA256: true, tls.TLS_AES_256_GCM_SHA384: true, tls.TLS_CHACHA20_POLY1305_SHA256: true}
	seen := map[uint16]bool{}
	excluded := map[uint16]bool{}
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ':' || r == ',' || r == ' ' })
	for _, f := range fields {
		neg := strings.HasPrefix(f, "!") || strings.HasPrefix(f, "-")
		name := strings.TrimLeft(f, "!-+")
		id, ok := opensslCiphers[name]
		if !ok {
			id, ok = byName[name]
		}
		switch {
		case neg && ok:
			excluded[id] = true
		case neg && opensslExclusions[name]:
		case neg:
			return nil, nil, fmt.Errorf("%q: hornbeam cannot evaluate this OpenSSL exclusion; list the suites to use by name instead", f)
		case ok && tls13[id]:
			warnings = append(warnings, name+" is a TLS 1.3 suite: Go always offers its TLS 1.3 suites (only TLS 1.2's can be chosen)")
		case ok:
			if !seen[id] {
				seen[id] = true
				suites = append(suites, id)
			}
		case insecure[name] || opensslInsecure[name]:
			warnings = append(warnings, name+" is left out: Go's TLS considers it insecure")
		case strings.Contains(name, "-") || strings.HasPrefix(name, "TLS_"):
			warnings = append(warnings, name+" is left out: Go's TLS does not implement it")
		default:
			return nil, nil, fmt.Errorf("%q is an OpenSSL keyword, which hornbeam cannot evaluate: list the TLS 1.2 suites by name (OpenSSL or IANA), separated by colons, like ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305, or leave --ciphers out for Go's defaults (ECDHE with AES-GCM or ChaCha20)", name)
		}
	}
	var kept []uint16
	for _, id := range suites {
		if !excluded[id] {
			kept = append(kept, id)
		}
	}
	if len(kept) == 0 {
		if len(suites) == 0 && len(warnings) == 0 {
			return nil, nil, fmt.Errorf("no cipher named; list TLS 1.2 suites like ECDHE-RSA-AES128-GCM-SHA256, or leave --ciphers out")
		}
		return nil, nil, fmt.Errorf("none of these is a TLS 1.2 suite Go offers; use some of %s, or leave --ciphers out", strings.Join(goSuiteNames(), ", "))
	}
	h2 := false
	for _, id := range kept {
		h2 = h2 || id == tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 || id == tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
	}
	if !h2 {
		return nil, nil, fmt.Errorf("HTTP/2 (which hornbeam serves over TLS) needs ECDHE-ECDSA-AES128-GCM-SHA256 or ECDHE-RSA-AES128-GCM-SHA256 (for an ECDSA or an RSA certificate) in the list: add it")
	}
	return kept, warnings, nil
}

// goSuiteNames are the OpenSSL names opensslCiphers knows, sorted.
func goSuiteNames() []string {
	names := make([]string, 0, len(opensslCiphers))
	for n := range opensslCiphers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
