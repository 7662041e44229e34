package worktree_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"

	"github.com/baton-gitops/baton/internal/worktree"
)

func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, content := range files {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, p), []byte(content), 0o644))
	}
	return dir
}

// What git would commit is readable through every fs interface; .git and
// ignored paths are not there; links inside resolve, links out do not.
func TestSnapshotShowsWhatGitWouldCommit(t *testing.T) {
	dir := tree(t, map[string]string{
		".git/config":             "[core]\n",
		".gitignore":              "*.secret\nbuild/\n",
		"app/deploy.yaml":         "kind: Deployment\n",
		"app/local.secret":        "token\n",
		"app/.gitignore":          "scratch.yaml\n",
		"app/scratch.yaml":        "x\n",
		"build/out.yaml":          "x\n",
		"overlays/dev/kustom.yml": "resources: []\n",
	})
	require.NoError(t, os.Symlink("../../app/deploy.yaml", filepath.Join(dir, "overlays", "dev", "link.yaml")))

	s, err := worktree.Open(dir)
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, fstest.TestFS(s, ".gitignore", "app/deploy.yaml", "app/.gitignore", "overlays/dev/kustom.yml", "overlays/dev/link.yaml"))

	// Links out of the tree are listed (as in a commit) but do not resolve.
	outside := tree(t, map[string]string{"passwd": "root\n"})
	require.NoError(t, os.Symlink(filepath.Join(outside, "passwd"), filepath.Join(dir, "overlays", "dev", "abs.yaml")))
	rel, err := filepath.Rel(filepath.Join(dir, "overlays", "dev"), filepath.Join(outside, "passwd"))
	require.NoError(t, err)
	require.NoError(t, os.Symlink(rel, filepath.Join(dir, "overlays", "dev", "up.yaml")))

	for _, hidden := range []string{".git/config", "app/local.secret", "app/scratch.yaml", "build/out.yaml", "build"} {
		_, err := s.Stat(hidden)
		require.ErrorIs(t, err, fs.ErrNotExist, hidden)
	}
	b, err := s.ReadFile("overlays/dev/link.yaml")
	require.NoError(t, err)
	require.Equal(t, "kind: Deployment\n", string(b))
	for _, out := range []string{"overlays/dev/abs.yaml", "overlays/dev/up.yaml"} {
		_, err := s.ReadFile(out)
		require.Error(t, err, out)
		require.True(t, errors.Is(err, fs.ErrNotExist), "%s: %v", out, err)
	}
	_, err = s.Open("../etc/passwd")
	require.ErrorIs(t, err, fs.ErrInvalid)

	a, err := s.TreeHash(".")
	require.NoError(t, err)
	s2, err := worktree.Open(dir)
	require.NoError(t, err)
	defer s2.Close()
	b2, err := s2.TreeHash(".")
	require.NoError(t, err)
	require.NotEqual(t, a, b2, "two snapshots of a live tree must not share a cache key")
}

func TestTop(t *testing.T) {
	dir := tree(t, map[string]string{".git/HEAD": "ref: refs/heads/main\n", "overlays/dev/kustomization.yaml": ""})
	top, rel, err := worktree.Top(filepath.Join(dir, "overlays", "dev"))
	require.NoError(t, err)
	require.Equal(t, dir, top)
	require.Equal(t, "overlays/dev", rel)
	plain := tree(t, map[string]string{"a.yaml": ""})
	top, rel, err = worktree.Top(plain)
	require.NoError(t, err)
	require.Equal(t, plain, top)
	require.Equal(t, ".", rel)
	_, _, err = worktree.Top(filepath.Join(plain, "a.yaml"))
	require.EqualError(t, err, "--path "+filepath.Join(plain, "a.yaml")+" is a file, not a folder")
}
