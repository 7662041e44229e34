package source

import (
	"errors"
	"strings"
	"testing"

	"github.com/baton-gitops/baton/internal/heappeak"
	"github.com/baton-gitops/baton/internal/testenv/gitserver"
)

// A branch that brings a blob over MaxBlobSize does not advance and names
// the blob; a branch that moved in the same poll advances; nothing of the
// oversized pack reaches go-git, so the heap stays small.
func TestOversizedBlobFailsOnlyItsBranch(t *testing.T) {
	srv := startServer(t)
	repo := srv.CreateRepo(t, "app", baseFiles)
	r := openRepo(t, httpsSettings(t, srv, "app"), Options{MaxBlobSize: 1 << 20})
	before := branchResult(t, mustPoll(t, r), "env/dev").Revision

	// 64 MiB of one byte compresses to 64 KiB: small to download, 64 MiB
	// (and several times that in go-git) once inflated.
	repo.Commit(t, "env/dev", gitserver.Change{Write: map[string]string{"big.yaml": strings.Repeat("x", 64<<20)}})
	staging := repo.Commit(t, "env/staging", gitserver.Change{Write: map[string]string{"apps/web/deployment.yaml": "kind: Deployment\nreplicas: 2\n"}})
	var res PollResult
	var err error
	peak := heappeak.During(func() { res, err = r.Poll(t.Context()) })
	if err != nil {
		t.Fatalf("poll: %v (an oversized blob is its branch's failure, not the repository's)", err)
	}
	dev := branchResult(t, res, "env/dev")
	if !errors.Is(dev.Err, ErrBlobTooLarge) || KindName(dev.Err) != "too_large" {
		t.Fatalf("env/dev error %v, want ErrBlobTooLarge", dev.Err)
	}
	for _, want := range []string{"env/dev", "the fetched pack holds a blob ", " of 64.0 MiB: over the limit of 1.0 MiB on one object (limits.maxBlobSize); nothing was stored"} {
		if !strings.Contains(dev.Err.Error(), want) {
			t.Errorf("env/dev error %q lacks %q", dev.Err, want)
		}
	}
	if dev.Changed || dev.Revision.Commit != before.Commit {
		t.Errorf("env/dev moved to %s, want its last good revision %s", dev.Revision.Commit, before.Commit)
	}
	if st := branchResult(t, res, "env/staging"); st.Err != nil || st.Revision.Commit != staging {
		t.Errorf("env/staging: %v at %v, want it advanced to %s", st.Err, st.Revision, staging)
	}
	t.Logf("heap grew by at most %d MiB while refusing a 64 MiB blob", peak>>20)
	if peak > 32<<20 {
		t.Errorf("heap grew by %d MiB: the blob was inflated in memory", peak>>20)
	}

	// Alone in a poll, it is still only its branch's failure; a blob up to
	// 8 times the limit is hashed as it streams by, so the error says how
	// to find its path.
	repo.Commit(t, "env/dev", gitserver.Change{Write: map[string]string{"big2.yaml": strings.Repeat("y", 2<<20)}, Delete: []string{"big.yaml"}})
	res, err = r.Poll(t.Context())
	dev = branchResult(t, res, "env/dev")
	if err != nil || !errors.Is(dev.Err, ErrBlobTooLarge) {
		t.Fatalf("poll: %v; env/dev: %v", err, dev.Err)
	}
	hash := strings.TrimSpace(gitserver.RunGit(t, repo.Path, nil, "rev-parse", "env/dev:big2.yaml"))
	if !strings.Contains(dev.Err.Error(), "blob "+hash+" of 2.0 MiB") || !strings.Contains(dev.Err.Error(), "git log --all --find-object="+hash) {
		t.Errorf("env/dev error %q: want the blob %s and how to find its path", dev.Err, hash)
	}
}

// A blob that grows past the limit in a later commit arrives as a delta
// against the version the store has: the delta's result size is checked.
func TestOversizedDeltaIsRefused(t *testing.T) {
	srv := startServer(t)
	var b strings.Builder
	for i := range 20000 {
		b.WriteString("line " + strings.Repeat("z", i%50) + "\n")
	}
	base := b.String() // ~600 KiB, under the limit
	repo := srv.CreateRepo(t, "app", map[string]string{"data.yaml": base})
	r := openRepo(t, httpsSettings(t, srv, "app", "env/dev"), Options{MaxBlobSize: 1 << 20})
	mustPoll(t, r)
	repo.Commit(t, "env/dev", gitserver.Change{Write: map[string]string{"data.yaml": base + base + base}})
	res, err := r.Poll(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if e := branchResult(t, res, "env/dev").Err; !errors.Is(e, ErrBlobTooLarge) {
		t.Fatalf("env/dev error %v, want ErrBlobTooLarge", e)
	}
}

// Blobs under the limit are fetched as before.
func TestBlobUnderTheLimitIsFetched(t *testing.T) {
	srv := startServer(t)
	repo := srv.CreateRepo(t, "app", baseFiles)
	r := openRepo(t, httpsSettings(t, srv, "app", "env/dev"), Options{MaxBlobSize: 1 << 20})
	mustPoll(t, r)
	head := repo.Commit(t, "env/dev", gitserver.Change{Write: map[string]string{"ok.yaml": strings.Repeat("x", 1<<20)}})
	res := mustPoll(t, r)
	dev := branchResult(t, res, "env/dev")
	if dev.Err != nil || dev.Revision.Commit != head {
		t.Fatalf("env/dev: %v at %v", dev.Err, dev.Revision)
	}
	if data, err := dev.Revision.Snapshot.ReadFile("ok.yaml"); err != nil || len(data) != 1<<20 {
		t.Errorf("ok.yaml: %d bytes, %v", len(data), err)
	}
}
