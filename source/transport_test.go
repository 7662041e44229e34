package source

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/baton-gitops/baton/internal/testenv/gitserver"
)

func TestSSHPollWithTheRightHostKey(t *testing.T) {
	srv := startServer(t)
	repo := srv.CreateRepo(t, "app", baseFiles)
	r := openRepo(t, sshSettings(t, srv, "app"), Options{})
	res := mustPoll(t, r)
	dev := branchResult(t, res, "env/dev")
	if dev.Err != nil || dev.Revision.Commit != repo.Head(t, "env/dev") {
		t.Fatalf("env/dev over ssh: %+v", dev)
	}

	srv.ResetCounts()
	mustPoll(t, r)
	if got := srv.Counts("app"); got != (gitserver.Counts{Advertise: 1}) {
		t.Fatalf("unchanged ssh poll made %+v, want one advertisement", got)
	}
	head := repo.Commit(t, "env/dev", gitserver.Change{Write: map[string]string{"x": "1"}})
	if dev := branchResult(t, mustPoll(t, r), "env/dev"); dev.Revision.Commit != head {
		t.Fatalf("ssh poll missed the new commit")
	}
}

func TestSSHRefusesAMismatchedHostKey(t *testing.T) {
	srv := startServer(t)
	srv.CreateRepo(t, "app", baseFiles)
	s := sshSettings(t, srv, "app")
	s.Auth.KnownHostsFile = srv.WrongKnownHostsFile(t)
	r := openRepo(t, s, Options{})
	_, err := r.Poll(context.Background())
	requireKind(t, err, ErrHostKeyMismatch)
	if c := srv.Counts("app"); c.Advertise != 0 {
		t.Errorf("git ran despite the host key mismatch: %+v", c)
	}
}

func TestSSHKeyWithPassphrase(t *testing.T) {
	srv := startServer(t)
	srv.CreateRepo(t, "app", baseFiles)
	key := srv.AuthorizedClientKey(t, "correct horse")
	s := sshSettings(t, srv, "app")
	s.Auth.SSHKeyFile = key.PrivateKeyFile
	s.Auth.SSHPassphraseFile = secretFile(t, "correct horse")
	r := openRepo(t, s, Options{})
	if dev := branchResult(t, mustPoll(t, r), "env/dev"); dev.Revision == nil {
		t.Fatal("no revision with a passphrase-protected key")
	}

	s.Auth.SSHPassphraseFile = secretFile(t, "wrong battery")
	bad := openRepo(t, s, Options{})
	_, err := bad.Poll(context.Background())
	requireKind(t, err, ErrAuthFailed)
	if strings.Contains(err.Error(), "wrong battery") {
		t.Fatalf("error carries the passphrase: %v", err)
	}
}

func TestSSHUnauthorizedKeyFailsAuth(t *testing.T) {
	srv := startServer(t)
	srv.CreateRepo(t, "app", baseFiles)
	s := sshSettings(t, srv, "app")
	s.Auth.SSHKeyFile = gitserver.NewClientKey(t, "").PrivateKeyFile
	r := openRepo(t, s, Options{})
	_, err := r.Poll(context.Background())
	requireKind(t, err, ErrAuthFailed)
}

func TestInsecureSkipHostKeyCheckWarnsAtEveryFetch(t *testing.T) {
	srv := startServer(t)
	srv.CreateRepo(t, "app", baseFiles)
	s := sshSettings(t, srv, "app")
	s.Auth.KnownHostsFile = ""
	s.InsecureSkipHostKeyCheck = true
	var logs bytes.Buffer
	r := openRepo(t, s, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	mustPoll(t, r)
	mustPoll(t, r)
	if n := strings.Count(logs.String(), "SSH host key check is disabled"); n != 2 {
		t.Fatalf("warnings = %d, want one per poll:\n%s", n, logs.String())
	}
}

func TestFileURL(t *testing.T) {
	srv := startServer(t)
	repo := srv.CreateRepo(t, "app", baseFiles)
	r := openRepo(t, RepositorySettings{URL: srv.FileURL("app"), Branches: envBranches}, Options{})
	res := mustPoll(t, r)
	if dev := branchResult(t, res, "env/dev"); dev.Revision == nil || dev.Revision.Commit != repo.Head(t, "env/dev") {
		t.Fatalf("file:// env/dev: %+v", dev)
	}
	mustPoll(t, r)
	head := repo.Commit(t, "env/prod", gitserver.Change{Write: map[string]string{"apps/web/deployment.yaml": "v2"}})
	prod := branchResult(t, mustPoll(t, r), "env/prod")
	if !prod.Changed || prod.Revision.Commit != head || prod.Movement != FastForward {
		t.Fatalf("file:// env/prod: changed=%v movement=%v", prod.Changed, prod.Movement)
	}
	if b, _ := prod.Revision.Snapshot.ReadFile("apps/web/deployment.yaml"); string(b) != "v2" {
		t.Fatalf("content %q", b)
	}
	if c := srv.Counts("app"); c != (gitserver.Counts{}) {
		t.Errorf("file:// went through the server: %+v", c)
	}
}

func TestUnreachableRemoteKeepsTheLastGoodRevision(t *testing.T) {
	srv := startServer(t)
	repo := srv.CreateRepo(t, "app", baseFiles)
	s := httpsSettings(t, srv, "app")
	r := openRepo(t, s, Options{})
	good := branchResult(t, mustPoll(t, r), "env/dev").Revision

	srv.SetAuthFailure(true)
	res, err := r.Poll(context.Background())
	requireKind(t, err, ErrAuthFailed)
	if dev := branchResult(t, res, "env/dev"); dev.Revision != good || dev.Changed {
		t.Fatalf("failed poll lost the revision: %+v", dev)
	}
	srv.SetAuthFailure(false)

	// A port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s2 := s
	s2.URL = "https://" + addr + "/app.git"
	down := openRepo(t, s2, Options{})
	_, err = down.Poll(context.Background())
	requireKind(t, err, ErrUnreachable)
	_ = repo
}

// TestTimeout points the repository at a TCP listener that accepts and never
// answers: a stand-in for a hung server, which no real git server does on
// purpose.
func TestTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { <-done; c.Close() }()
		}
	}()
	r := openRepo(t, RepositorySettings{
		URL:      "http://" + ln.Addr().String() + "/app.git",
		Branches: []string{"env/dev"},
		Timeout:  Duration{300 * time.Millisecond},
	}, Options{})
	_, err = r.Poll(context.Background())
	requireKind(t, err, ErrTimeout)
}
