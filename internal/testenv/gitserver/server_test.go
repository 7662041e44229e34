package gitserver

import (
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
)

// withCreds returns the repository's HTTP URL carrying user and token.
func withCreds(t *testing.T, raw, user, token string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(user, token)
	return u.String()
}

func TestHTTPPushNeedsTheRightToken(t *testing.T) {
	srv := Start(t, Options{TLS: true})
	repo := srv.CreateRepo(t, "team/app", map[string]string{"a.yaml": "a: 1\n"})
	caEnv := []string{"GIT_SSL_CAINFO=" + srv.WriteCABundle(t)}

	work := filepath.Join(t.TempDir(), "clone")
	good := withCreds(t, srv.HTTPURL("team/app"), srv.User, srv.Token)
	RunGit(t, "", caEnv, "clone", "-q", "-b", "env/dev", good, work)
	writeAt(t, filepath.Join(work, "b.yaml"), []byte("b: 2\n"), 0o644)
	RunGit(t, work, nil, "add", "-A")
	RunGit(t, work, nil, "commit", "-q", "-m", "add b")
	want := RunGit(t, work, nil, "rev-parse", "HEAD")

	bad := withCreds(t, srv.HTTPURL("team/app"), srv.User, "wrong-token")
	denied := srv.Counts("team/app").Denied
	_, err := TryGit(work, caEnv, "push", "-q", bad, "HEAD:refs/heads/env/dev")
	if err == nil {
		t.Fatal("push with a wrong token succeeded")
	}
	if !strings.Contains(err.Error(), "Authentication failed") {
		t.Errorf("push with a wrong token: want an authentication error, got %v", err)
	}
	if got := srv.Counts("team/app").Denied; got <= denied {
		t.Errorf("denied count did not grow: %d", got)
	}
	if head := repo.Head(t, "env/dev"); head == want {
		t.Fatal("refused push moved the branch")
	}

	RunGit(t, work, caEnv, "push", "-q", good, "HEAD:refs/heads/env/dev")
	if head := repo.Head(t, "env/dev"); head != want {
		t.Fatalf("env/dev = %s after push, want %s", head, want)
	}
}

func TestAuthFailureSwitchRefusesEveryone(t *testing.T) {
	srv := Start(t, Options{})
	srv.CreateRepo(t, "app", map[string]string{"a": "1"})
	good := withCreds(t, srv.HTTPURL("app"), srv.User, srv.Token)

	srv.SetAuthFailure(true)
	if _, err := TryGit("", nil, "ls-remote", good); err == nil {
		t.Fatal("ls-remote succeeded while authentication is made to fail")
	}
	srv.SetAuthFailure(false)
	if out := RunGit(t, "", nil, "ls-remote", good); !strings.Contains(out, "refs/heads/env/prod") {
		t.Fatalf("ls-remote output lacks env/prod: %q", out)
	}
}

func TestAnonymousReadAllowsFetchButNotPush(t *testing.T) {
	srv := Start(t, Options{AnonymousRead: true})
	srv.CreateRepo(t, "app", map[string]string{"a": "1"})
	work := filepath.Join(t.TempDir(), "clone")
	RunGit(t, "", nil, "clone", "-q", "-b", "env/dev", srv.HTTPURL("app"), work)
	RunGit(t, work, nil, "commit", "-q", "--allow-empty", "-m", "empty")
	if _, err := TryGit(work, nil, "push", "-q", srv.HTTPURL("app"), "HEAD:refs/heads/env/dev"); err == nil {
		t.Fatal("anonymous push succeeded")
	}
	// git tries without credentials first, so ask with wrong ones directly.
	req, err := http.NewRequest(http.MethodGet, srv.HTTPURL("app")+"/info/refs?service=git-upload-pack", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(srv.User, "wrong")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong credentials on an anonymous-read server: status %d, want 401", resp.StatusCode)
	}
}

func sshCommand(keyFile, knownHosts string) string {
	return "ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes" +
		" -o GlobalKnownHostsFile=/dev/null -o UserKnownHostsFile=" + knownHosts + " -i " + keyFile
}

// TestSSHCloneChecksTheHostKey uses the real OpenSSH client through git.
func TestSSHCloneChecksTheHostKey(t *testing.T) {
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("no ssh client on this machine")
	}
	srv := Start(t, Options{})
	repo := srv.CreateRepo(t, "app", map[string]string{"a.yaml": "a: 1\n"})
	key := srv.AuthorizedClientKey(t, "")

	wrong := []string{"GIT_SSH_COMMAND=" + sshCommand(key.PrivateKeyFile, srv.WrongKnownHostsFile(t))}
	_, err := TryGit("", wrong, "clone", "-q", srv.SSHURL("app"), filepath.Join(t.TempDir(), "c1"))
	if err == nil {
		t.Fatal("clone with a wrong host key succeeded")
	}
	if !strings.Contains(err.Error(), "Host key verification failed") {
		t.Errorf("want a host key verification failure, got %v", err)
	}

	right := []string{"GIT_SSH_COMMAND=" + sshCommand(key.PrivateKeyFile, srv.KnownHostsFile(t))}
	work := filepath.Join(t.TempDir(), "c2")
	RunGit(t, "", right, "clone", "-q", "-b", "env/dev", srv.SSHURL("app"), work)
	if head := RunGit(t, work, nil, "rev-parse", "HEAD"); head != repo.Head(t, "env/dev") {
		t.Fatalf("clone HEAD %s differs from env/dev", head)
	}

	RunGit(t, work, nil, "commit", "-q", "--allow-empty", "-m", "over ssh")
	RunGit(t, work, right, "push", "-q", "origin", "HEAD:refs/heads/env/dev")
	if head := RunGit(t, work, nil, "rev-parse", "HEAD"); head != repo.Head(t, "env/dev") {
		t.Fatal("push over ssh did not move env/dev")
	}
}

func TestSSHRefusesUnauthorizedKey(t *testing.T) {
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("no ssh client on this machine")
	}
	srv := Start(t, Options{})
	srv.CreateRepo(t, "app", map[string]string{"a": "1"})
	stranger := NewClientKey(t, "")
	env := []string{"GIT_SSH_COMMAND=" + sshCommand(stranger.PrivateKeyFile, srv.KnownHostsFile(t))}
	if _, err := TryGit("", env, "ls-remote", srv.SSHURL("app")); err == nil {
		t.Fatal("ls-remote with an unauthorized key succeeded")
	}
}

func TestCountsTellAdvertisementFromFetch(t *testing.T) {
	srv := Start(t, Options{})
	srv.CreateRepo(t, "app", map[string]string{"a": "1"})
	good := withCreds(t, srv.HTTPURL("app"), srv.User, srv.Token)

	t.Run("http v0", func(t *testing.T) {
		srv.ResetCounts()
		RunGit(t, "", nil, "-c", "protocol.version=0", "ls-remote", good)
		// git asks without credentials first: that 401 counts as Denied.
		if got := srv.Counts("app"); got.Advertise != 1 || got.UploadPack != 0 || got.ReceivePack != 0 {
			t.Fatalf("ls-remote counts = %+v, want one advertisement", got)
		}
		RunGit(t, "", nil, "-c", "protocol.version=0", "clone", "-q", good, filepath.Join(t.TempDir(), "c"))
		if got := srv.Counts("app"); got.Advertise != 2 || got.UploadPack != 1 {
			t.Fatalf("after clone counts = %+v, want 2 advertisements and 1 upload-pack", got)
		}
	})
	t.Run("http v2", func(t *testing.T) {
		srv.ResetCounts()
		RunGit(t, "", nil, "-c", "protocol.version=2", "ls-remote", good)
		if got := srv.Counts("app"); got.UploadPack != 0 || got.Advertise == 0 {
			t.Fatalf("v2 ls-remote counts = %+v, want advertisements only", got)
		}
	})
	t.Run("ssh", func(t *testing.T) {
		if _, err := exec.LookPath("ssh"); err != nil {
			t.Skip("no ssh client on this machine")
		}
		key := srv.AuthorizedClientKey(t, "")
		env := []string{"GIT_SSH_COMMAND=" + sshCommand(key.PrivateKeyFile, srv.KnownHostsFile(t))}
		srv.ResetCounts()
		RunGit(t, "", env, "ls-remote", srv.SSHURL("app"))
		if got := srv.Counts("app"); got != (Counts{Advertise: 1}) {
			t.Fatalf("ssh ls-remote counts = %+v, want one advertisement", got)
		}
		RunGit(t, "", env, "clone", "-q", srv.SSHURL("app"), filepath.Join(t.TempDir(), "c"))
		if got := srv.Counts("app"); got.UploadPack != 1 {
			t.Fatalf("ssh clone counts = %+v, want one upload-pack", got)
		}
	})
}

func TestRepoHelpersChangeBranches(t *testing.T) {
	srv := Start(t, Options{})
	repo := srv.CreateRepo(t, "app", map[string]string{"base/a.yaml": "a\n", "base/b.yaml": "b\n"})
	first := repo.Head(t, "env/dev")
	for _, b := range EnvBranches {
		if h := repo.Head(t, b); h != first {
			t.Fatalf("%s = %s, want %s", b, h, first)
		}
	}

	second := repo.Commit(t, "env/dev", Change{
		Write:  map[string]string{"base/c.yaml": "c\n", "base/a.yaml": "a2\n"},
		Delete: []string{"base/b.yaml"},
	})
	if repo.Parent(t, second) != first {
		t.Fatal("commit is not on top of the previous head")
	}
	files := RunGit(t, repo.Path, nil, "ls-tree", "-r", "--name-only", second)
	if files != "base/a.yaml\nbase/c.yaml" {
		t.Fatalf("tree after change = %q", files)
	}
	if got := RunGit(t, repo.Path, nil, "show", second+":base/a.yaml"); got != "a2" {
		t.Fatalf("a.yaml = %q", got)
	}

	rewritten := repo.ForcePush(t, "env/dev", first, Change{Write: map[string]string{"x": "x"}})
	if repo.Head(t, "env/dev") != rewritten || repo.Parent(t, rewritten) != first {
		t.Fatal("force-push did not replace the head")
	}
	if _, err := TryGit(repo.Path, nil, "merge-base", "--is-ancestor", second, rewritten); err == nil {
		t.Fatal("old head is still in the rewritten history")
	}

	repo.ResetBranch(t, "env/staging", second)
	if repo.Head(t, "env/staging") != second {
		t.Fatal("reset did not move env/staging")
	}
	repo.DeleteBranch(t, "env/prod")
	if _, err := TryGit(repo.Path, nil, "rev-parse", "-q", "--verify", "refs/heads/env/prod"); err == nil {
		t.Fatal("env/prod still exists")
	}
	// A commit on a missing branch creates it from scratch.
	orphan := repo.Commit(t, "env/prod", Change{Write: map[string]string{"p": "p"}})
	if repo.Head(t, "env/prod") != orphan {
		t.Fatal("commit did not create env/prod")
	}
}

func TestSignedCommitVerifies(t *testing.T) {
	srv := Start(t, Options{})
	repo := srv.CreateRepo(t, "app", map[string]string{"a": "1"})
	key := NewSigningKey(t, "Release Bot", "release@baton.invalid")
	other := NewSigningKey(t, "Someone Else", "else@baton.invalid")
	signed := repo.Commit(t, "env/prod", Change{Write: map[string]string{"a": "2"}, Sign: key})
	unsigned := repo.Commit(t, "env/prod", Change{Write: map[string]string{"a": "3"}})

	r, err := git.PlainOpen(repo.Path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.CommitObject(plumbing.NewHash(signed))
	if err != nil {
		t.Fatal(err)
	}
	if c.PGPSignature == "" {
		t.Fatal("signed commit carries no signature")
	}
	e, err := c.Verify(key.ArmoredPublicKey)
	if err != nil {
		t.Fatalf("verify with the signing key: %v", err)
	}
	if _, ok := e.Identities["Release Bot <release@baton.invalid>"]; !ok {
		t.Errorf("verified entity has identities %v", e.Identities)
	}
	if _, err := c.Verify(other.ArmoredPublicKey); err == nil {
		t.Fatal("signature verified against another key")
	}
	u, err := r.CommitObject(plumbing.NewHash(unsigned))
	if err != nil {
		t.Fatal(err)
	}
	if u.PGPSignature != "" {
		t.Fatal("unsigned commit carries a signature")
	}
}

func TestCreateLargeRepo(t *testing.T) {
	srv := Start(t, Options{})
	repo := srv.CreateLargeRepo(t, "big", LargeRepoOptions{Files: 250, Commits: 40})
	if n := RunGit(t, repo.Path, nil, "rev-list", "--count", "env/dev"); n != "40" {
		t.Fatalf("commits = %s, want 40", n)
	}
	files := strings.Split(RunGit(t, repo.Path, nil, "ls-tree", "-r", "--name-only", "env/prod"), "\n")
	if len(files) != 250 {
		t.Fatalf("files = %d, want 250", len(files))
	}
	if got := RunGit(t, repo.Path, nil, "show", "env/dev:"+LargeRepoPath(38)); !strings.Contains(got, "version 40") {
		t.Fatalf("last change missing: %q", got[:min(len(got), 40)])
	}
}
