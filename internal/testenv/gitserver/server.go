// Package gitserver runs a real git server for tests: smart HTTP through
// `git http-backend` behind net/http/cgi, and SSH through an in-process
// golang.org/x/crypto/ssh server that execs the real git-upload-pack and
// git-receive-pack. Both listen on 127.0.0.1 free ports and serve the bare
// repositories under one folder per test.
//
// The server counts requests per repository and per kind, so that a test can
// assert that an unchanged poll asked for the branch heads and fetched
// nothing. Helpers create repositories with environment branches and change
// them with real git commands.
//
// Everything a Server starts is stopped by t.Cleanup: listeners, SSH
// connections and the git processes serving them.
package gitserver

import (
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// DefaultUser is the HTTP user name and the SSH user a Server accepts when
// Options.User is empty.
const DefaultUser = "baton"

// Options configures a Server. The zero value is a plain-HTTP server with a
// generated token and no anonymous access.
type Options struct {
	// User is the HTTP basic-auth user. Empty means DefaultUser.
	User string
	// Token is the HTTP basic-auth password. Empty means a random token.
	Token string
	// AnonymousRead lets requests without credentials fetch (never push).
	// Requests that carry wrong credentials are refused all the same.
	AnonymousRead bool
	// TLS serves HTTPS with a self-signed certificate; CABundle returns it.
	TLS bool
}

// Kind is the kind of a counted request.
type Kind int

const (
	// Advertise is a reference advertisement for fetching: the whole of an
	// ls-remote, and the first half of a fetch.
	Advertise Kind = iota
	// UploadPack is a fetch negotiation that asks for objects.
	UploadPack
	// ReceivePack is a push (advertisement or pack upload).
	ReceivePack
)

// String names the kind for test messages.
func (k Kind) String() string {
	switch k {
	case Advertise:
		return "advertise"
	case UploadPack:
		return "upload-pack"
	case ReceivePack:
		return "receive-pack"
	}
	return "unknown"
}

// Counts are the requests a repository received, by kind. Denied counts the
// requests refused for authentication, which never reach git.
type Counts struct {
	Advertise   int
	UploadPack  int
	ReceivePack int
	Denied      int
}

// Server is a running git server. Its methods are safe for concurrent use.
type Server struct {
	// Root is the folder that holds the bare repositories (<name>.git).
	Root string
	// User and Token are the HTTP credentials that are accepted.
	User  string
	Token string

	tb       testing.TB
	gitPath  string
	httpURL  string
	caPEM    []byte
	ssh      *sshServer
	failAuth atomic.Bool // when true every request is refused as unauthenticated

	mu     sync.Mutex // guards counts
	counts map[string]*Counts
}

// Start starts a server for the test; t.Cleanup stops it. It fails the test
// when git or git-http-backend is missing.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	gitPath, err := exec.LookPath("git")
	if err != nil {
		t.Fatalf("gitserver: git binary not found: %v", err)
	}
	s := &Server{
		Root:    t.TempDir(),
		User:    opts.User,
		Token:   opts.Token,
		tb:      t,
		gitPath: gitPath,
		counts:  map[string]*Counts{},
	}
	if s.User == "" {
		s.User = DefaultUser
	}
	if s.Token == "" {
		s.Token = randomToken(t)
	}
	s.startHTTP(t, opts)
	s.ssh = startSSH(t, s)
	return s
}

// SetAuthFailure makes every request fail authentication (HTTP 401, SSH
// auth refused) while on is true, whatever credentials it carries.
func (s *Server) SetAuthFailure(on bool) { s.failAuth.Store(on) }

// HTTPURL is the smart-HTTP(S) URL of the repository called name, without
// credentials.
func (s *Server) HTTPURL(name string) string {
	return s.httpURL + "/" + name + ".git"
}

// SSHURL is the ssh:// URL of the repository called name for DefaultUser.
func (s *Server) SSHURL(name string) string {
	return "ssh://" + s.User + "@" + s.ssh.addr + "/" + name + ".git"
}

// SSHAddr is the host:port of the SSH server.
func (s *Server) SSHAddr() string { return s.ssh.addr }

// FileURL is the file:// URL of the repository called name.
func (s *Server) FileURL(name string) string {
	return "file://" + filepath.ToSlash(s.RepoPath(name))
}

// RepoPath is the folder of the bare repository called name.
func (s *Server) RepoPath(name string) string {
	return filepath.Join(s.Root, filepath.FromSlash(name)+".git")
}

// Counts returns the requests the repository called name has received.
func (s *Server) Counts(name string) Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.counts[name]; ok {
		return *c
	}
	return Counts{}
}

// ResetCounts sets the counts of every repository to zero.
func (s *Server) ResetCounts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts = map[string]*Counts{}
}

// count records one request for the repository at path (relative to Root,
// with or without the .git suffix).
func (s *Server) count(repoPath string, kind Kind) {
	s.record(repoPath, func(c *Counts) {
		switch kind {
		case Advertise:
			c.Advertise++
		case UploadPack:
			c.UploadPack++
		case ReceivePack:
			c.ReceivePack++
		}
	})
}

func (s *Server) countDenied(repoPath string) {
	s.record(repoPath, func(c *Counts) { c.Denied++ })
}

func (s *Server) record(repoPath string, f func(*Counts)) {
	name := strings.TrimSuffix(strings.Trim(repoPath, "/"), ".git")
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.counts[name]
	if !ok {
		c = &Counts{}
		s.counts[name] = c
	}
	f(c)
}
