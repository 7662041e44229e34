package source

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/baton-gitops/baton/internal/testenv/gitserver"
)

var envBranches = []string{"env/dev", "env/staging", "env/prod"}

// secretFile writes a credential as a mounted Secret would (with a trailing
// newline) and returns its path.
func secretFile(t testing.TB, value string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// httpsSettings follows the repository over HTTPS with the server's token.
func httpsSettings(t testing.TB, srv *gitserver.Server, name string, branches ...string) RepositorySettings {
	t.Helper()
	if len(branches) == 0 {
		branches = envBranches
	}
	return RepositorySettings{
		URL:          srv.HTTPURL(name),
		Branches:     branches,
		Auth:         AuthSettings{Username: srv.User, TokenFile: secretFile(t, srv.Token)},
		CABundleFile: srv.WriteCABundle(t),
		Timeout:      Duration{30 * time.Second},
	}
}

// sshSettings follows the repository over SSH with an authorised key.
func sshSettings(t testing.TB, srv *gitserver.Server, name string, branches ...string) RepositorySettings {
	t.Helper()
	if len(branches) == 0 {
		branches = envBranches
	}
	key := srv.AuthorizedClientKey(t, "")
	return RepositorySettings{
		URL:      srv.SSHURL(name),
		Branches: branches,
		Auth:     AuthSettings{SSHKeyFile: key.PrivateKeyFile, KnownHostsFile: srv.KnownHostsFile(t)},
		Timeout:  Duration{30 * time.Second},
	}
}

func openRepo(t testing.TB, s RepositorySettings, opts Options) *Repository {
	t.Helper()
	if opts.CacheDir == "" {
		opts.CacheDir = t.TempDir()
	}
	r, err := NewRepository(s, opts)
	if err != nil {
		t.Fatalf("NewRepository: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// mustPoll polls and fails the test on a repository-level error.
func mustPoll(t testing.TB, r *Repository) PollResult {
	t.Helper()
	res, err := r.Poll(context.Background())
	if err != nil {
		t.Fatalf("poll: %v", err)
	}
	return res
}

func branchResult(t testing.TB, res PollResult, branch string) BranchResult {
	t.Helper()
	for _, b := range res.Branches {
		if b.Branch == branch {
			return b
		}
	}
	t.Fatalf("no result for %s in %+v", branch, res)
	return BranchResult{}
}

func startServer(t testing.TB) *gitserver.Server {
	t.Helper()
	return gitserver.Start(t, gitserver.Options{TLS: true})
}

var baseFiles = map[string]string{
	"apps/web/kustomization.yaml": "resources:\n- deployment.yaml\n",
	"apps/web/deployment.yaml":    "kind: Deployment\n",
	"README.md":                   "hello\n",
}

// recordingMetrics keeps every observation.
type recordingMetrics struct {
	mu  sync.Mutex
	ops []observation
}

type observation struct {
	op, kind string
}

func (m *recordingMetrics) ObserveGitOperation(_, op string, _ time.Duration, kind string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ops = append(m.ops, observation{op, kind})
}

func (m *recordingMetrics) list() []observation {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]observation(nil), m.ops...)
}

// requireKind fails unless err is an *Error of the kind.
func requireKind(t testing.TB, err, kind error) *Error {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("error %v: want kind %v", err, kind)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not a *source.Error", err)
	}
	return e
}
