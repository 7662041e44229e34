package source

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
)

// newHTTPTransport builds the repository's own HTTP client: go-git's
// package-level client (and client.InstallProtocol) is global state shared
// by every repository, while the CA bundle and timeouts are per repository.
// Proxies come from HTTPS_PROXY, HTTP_PROXY and NO_PROXY.
func newHTTPTransport(settings RepositorySettings) (transport.Transport, error) {
	base, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return nil, fmt.Errorf("http.DefaultTransport is a %T, not an *http.Transport", http.DefaultTransport)
	}
	tr := base.Clone()
	tr.Proxy = http.ProxyFromEnvironment
	if settings.CABundleFile != "" {
		pem, err := os.ReadFile(settings.CABundleFile)
		if err != nil {
			return nil, fmt.Errorf("caBundleFile: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("caBundleFile %s: no PEM certificate in it", settings.CABundleFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	tr.ResponseHeaderTimeout = settings.Timeout.Duration
	return githttp.NewClient(&http.Client{Transport: tr}), nil
}

// readSecret reads a credential file. Trailing newlines are part of how
// Secrets are written, never of the credential.
func readSecret(field, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", field, err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s %s: empty", field, path)
	}
	return s, nil
}

// connect prepares one operation's access to the remote: credentials are
// read now, so that a rotated Secret takes effect at the next operation.
// The returned redactor knows the secrets that were read.
func (r *Repository) connect() (remote, redactor, error) {
	s := r.settings
	switch r.endpoint.kind {
	case kindFile:
		return &localRemote{path: r.endpoint.path}, nil, nil
	case kindHTTP:
		w := &wireRemote{tr: r.httpTransport, ep: r.endpoint.ep}
		var secret string
		var err error
		switch {
		case s.Auth.TokenFile != "":
			secret, err = readSecret("auth.tokenFile", s.Auth.TokenFile)
		case s.Auth.PasswordFile != "":
			secret, err = readSecret("auth.passwordFile", s.Auth.PasswordFile)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %w", ErrAuthFailed, err)
		}
		if secret != "" {
			w.auth = &githttp.BasicAuth{Username: s.Auth.Username, Password: secret}
		}
		return w, redactor{secret}, nil
	default:
		return r.connectSSH()
	}
}

func (r *Repository) connectSSH() (remote, redactor, error) {
	s := r.settings
	key, err := os.ReadFile(s.Auth.SSHKeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: auth.sshKeyFile: %w", ErrAuthFailed, err)
	}
	var passphrase string
	if s.Auth.SSHPassphraseFile != "" {
		if passphrase, err = readSecret("auth.sshPassphraseFile", s.Auth.SSHPassphraseFile); err != nil {
			return nil, nil, fmt.Errorf("%w: %w", ErrAuthFailed, err)
		}
	}
	red := redactor{passphrase}
	auth, err := gitssh.NewPublicKeys(r.endpoint.ep.User, key, passphrase)
	if err != nil {
		// The parse error never quotes the passphrase, but redact anyway.
		return nil, red, fmt.Errorf("%w: auth.sshKeyFile %s: %w", ErrAuthFailed, s.Auth.SSHKeyFile, red.error(err))
	}
	failed := &atomic.Bool{}
	if s.InsecureSkipHostKeyCheck {
		auth.HostKeyCallback = ssh.InsecureIgnoreHostKey()
	} else {
		if _, err := os.Stat(s.Auth.KnownHostsFile); err != nil {
			return nil, red, fmt.Errorf("%w: auth.knownHostsFile: %w", ErrHostKeyMismatch, err)
		}
		db, err := gitssh.NewKnownHostsDb(s.Auth.KnownHostsFile)
		if err != nil {
			return nil, red, fmt.Errorf("%w: auth.knownHostsFile %s: %w", ErrHostKeyMismatch, s.Auth.KnownHostsFile, err)
		}
		check := db.HostKeyCallback()
		// Recording the failure here is surer than reading it back from
		// the handshake error's text.
		auth.HostKeyCallback = func(host string, addr net.Addr, k ssh.PublicKey) error {
			err := check(host, addr, k)
			if err != nil {
				failed.Store(true)
			}
			return err
		}
		// Offer the server only the key types known_hosts has for it, or
		// it may present another type and fail the check.
		auth.HostKeyAlgorithms = db.HostKeyAlgorithms(sshHostPort(r.endpoint.ep))
	}
	// go-git copies every field of a client config over the one the auth
	// method makes, zero fields included: start from the auth's own.
	cfg, err := auth.ClientConfig()
	if err != nil {
		return nil, red, fmt.Errorf("%w: %w", ErrAuthFailed, err)
	}
	cfg.Timeout = s.Timeout.Duration
	tr := gitssh.NewClient(cfg)
	return &wireRemote{tr: tr, ep: r.endpoint.ep, auth: auth, hostKeyBad: failed}, red, nil
}

func sshHostPort(ep *transport.Endpoint) string {
	port := ep.Port
	if port <= 0 {
		port = 22
	}
	return net.JoinHostPort(ep.Host, strconv.Itoa(port))
}
