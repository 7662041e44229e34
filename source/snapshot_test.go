package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/baton-gitops/baton/internal/testenv/gitserver"
)

// render's view of a snapshot (declared at the consumer, as render does).
type renderSnapshot interface {
	fs.FS
	TreeHash(string) (string, error)
}

var (
	_ fs.ReadDirFS   = (*Snapshot)(nil)
	_ fs.ReadFileFS  = (*Snapshot)(nil)
	_ fs.StatFS      = (*Snapshot)(nil)
	_ renderSnapshot = (*Snapshot)(nil)
)

func snapshotOf(t *testing.T, files map[string]string) (*Snapshot, *gitserver.Repo) {
	t.Helper()
	srv := startServer(t)
	repo := srv.CreateRepo(t, "app", files)
	r := openRepo(t, RepositorySettings{URL: srv.FileURL("app"), Branches: []string{"env/dev"}}, Options{})
	return branchResult(t, mustPoll(t, r), "env/dev").Revision.Snapshot, repo
}

func TestSnapshotIsAConformingFS(t *testing.T) {
	snap, _ := snapshotOf(t, map[string]string{
		"a.yaml":              "a",
		"a.b/x":               "dot folder sorts before a/ in git, after in fs",
		"a/b/c.yaml":          "c",
		"a/b/d.yaml":          "d",
		"overlays/prod/k.yml": "k",
		"empty":               "",
	})
	if err := fstest.TestFS(snap, "a.yaml", "a.b/x", "a/b/c.yaml", "a/b/d.yaml", "overlays/prod/k.yml", "empty"); err != nil {
		t.Fatal(err)
	}
}

func TestSnapshotReadsAndHashes(t *testing.T) {
	snap, repo := snapshotOf(t, map[string]string{
		"base/deploy.yaml":  "kind: Deployment\n",
		"base/svc.yaml":     "kind: Service\n",
		"overlays/dev/k":    "dev",
		"overlays/prod/k":   "prod",
		"overlays/same1/k":  "same",
		"overlays/same2/k":  "same",
		"docs/readme.md":    "x",
		"docs/nested/a.txt": "y",
	})

	b, err := snap.ReadFile("base/deploy.yaml")
	if err != nil || string(b) != "kind: Deployment\n" {
		t.Fatalf("ReadFile: %q %v", b, err)
	}
	b[0] = 'X' // the slice is the caller's
	if again, _ := snap.ReadFile("base/deploy.yaml"); string(again) != "kind: Deployment\n" {
		t.Fatal("ReadFile shares its buffer")
	}
	fi, err := snap.Stat("base/svc.yaml")
	if err != nil || fi.Size() != int64(len("kind: Service\n")) || fi.IsDir() || fi.Mode() != 0o444 {
		t.Fatalf("Stat: %v %v", fi, err)
	}
	if fi.ModTime().IsZero() {
		t.Error("no modification time")
	}
	entries, err := snap.ReadDir("overlays")
	if err != nil || len(entries) != 4 || entries[0].Name() != "dev" || !entries[0].IsDir() {
		t.Fatalf("ReadDir: %v %v", entries, err)
	}

	root, err := snap.TreeHash(".")
	if err != nil || root != gitserver.RunGit(t, repo.Path, nil, "rev-parse", "env/dev^{tree}") {
		t.Fatalf("root tree hash %s: %v", root, err)
	}
	base, _ := snap.TreeHash("base")
	if want := gitserver.RunGit(t, repo.Path, nil, "rev-parse", "env/dev:base"); base != want {
		t.Errorf("TreeHash(base) = %s, want %s", base, want)
	}
	blob, _ := snap.TreeHash("base/deploy.yaml")
	if want := gitserver.RunGit(t, repo.Path, nil, "rev-parse", "env/dev:base/deploy.yaml"); blob != want {
		t.Errorf("TreeHash(file) = %s, want %s", blob, want)
	}
	s1, _ := snap.TreeHash("overlays/same1")
	s2, _ := snap.TreeHash("overlays/same2")
	d, _ := snap.TreeHash("overlays/dev")
	if s1 != s2 || s1 == d {
		t.Errorf("equal folders must hash equal, different ones differently: %s %s %s", s1, s2, d)
	}

	for _, bad := range []string{"/base", "base/", "../x", "base//svc.yaml", ""} {
		if _, err := snap.Open(bad); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Open(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	for _, missing := range []string{"nope", "base/nope", "base/deploy.yaml/x"} {
		if _, err := snap.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Stat(%q) = %v, want ErrNotExist", missing, err)
		}
		if _, err := snap.TreeHash(missing); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("TreeHash(%q) = %v, want ErrNotExist", missing, err)
		}
	}
	if _, err := snap.ReadFile("base"); err == nil {
		t.Error("ReadFile of a folder succeeded")
	}
}

func TestSnapshotFollowsSymlinksInsideTheTree(t *testing.T) {
	srv := startServer(t)
	repo := srv.CreateRepo(t, "app", map[string]string{"base/a.yaml": "a", "overlays/dev/k": "k"})
	// The helpers write regular files; make links with git itself.
	work := filepath.Join(t.TempDir(), "w")
	gitserver.RunGit(t, "", nil, "clone", "-q", "-b", "env/dev", repo.Path, work)
	for link, target := range map[string]string{
		"overlays/dev/base": "../../base", "direct": "base/a.yaml", "escape": "../../etc/passwd", "loop": "loop",
	} {
		if err := os.Symlink(target, filepath.Join(work, filepath.FromSlash(link))); err != nil {
			t.Fatal(err)
		}
	}
	gitserver.RunGit(t, work, nil, "add", "-A")
	gitserver.RunGit(t, work, nil, "commit", "-q", "-m", "links")
	gitserver.RunGit(t, work, nil, "push", "-q", "origin", "env/dev")
	r := openRepo(t, RepositorySettings{URL: srv.FileURL("app"), Branches: []string{"env/dev"}}, Options{})
	snap := branchResult(t, mustPoll(t, r), "env/dev").Revision.Snapshot

	if b, err := snap.ReadFile("overlays/dev/base/a.yaml"); err != nil || string(b) != "a" {
		t.Fatalf("through a folder link: %q %v", b, err)
	}
	if b, err := snap.ReadFile("direct"); err != nil || string(b) != "a" {
		t.Fatalf("file link: %q %v", b, err)
	}
	if _, err := snap.ReadFile("escape"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("escaping link: %v", err)
	}
	if _, err := snap.ReadFile("loop"); err == nil {
		t.Fatal("link loop resolved")
	}
	entries, _ := snap.ReadDir("overlays/dev")
	for _, e := range entries {
		if e.Name() == "base" && e.Type() != fs.ModeSymlink {
			t.Errorf("ReadDir shows the link as %v", e.Type())
		}
	}
}

// TestSnapshotConcurrentReads reads one snapshot from many goroutines while
// the repository fetches and compacts: run with -race.
func TestSnapshotConcurrentReads(t *testing.T) {
	files := map[string]string{}
	for i := range 60 {
		files[fmt.Sprintf("apps/a%02d/f.yaml", i)] = fmt.Sprintf("n: %d\n", i)
	}
	srv := startServer(t)
	repo := srv.CreateRepo(t, "app", files)
	r := openRepo(t, httpsSettings(t, srv, "app", "env/dev"), Options{MaxPacks: 2})
	snap := branchResult(t, mustPoll(t, r), "env/dev").Revision.Snapshot

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 5 {
				for i := range 60 {
					name := fmt.Sprintf("apps/a%02d/f.yaml", (i+g+round)%60)
					f, err := snap.Open(name)
					if err != nil {
						errs <- err
						return
					}
					b, err := io.ReadAll(f)
					f.Close()
					if err != nil || string(b) != fmt.Sprintf("n: %d\n", (i+g+round)%60) {
						errs <- fmt.Errorf("%s: %q %v", name, b, err)
						return
					}
					if _, err := snap.TreeHash(filepath.Dir(name)); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	for i := range 4 {
		repo.Commit(t, "env/dev", gitserver.Change{Write: map[string]string{"apps/a00/f.yaml": fmt.Sprint(i)}})
		if _, err := r.Poll(context.Background()); err != nil {
			t.Error(err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
