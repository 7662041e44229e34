package render

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"testing/fstest"
)

// testSnapshot stands in for *source.Snapshot, which reads a git tree: the
// render package may not import source, and these tests need only the
// Snapshot contract. TreeHash is a SHA-256 over the paths and contents below
// a path; like a git tree hash, it changes exactly when the content does.
type testSnapshot struct {
	fs.FS
	hashes atomic.Int64 // TreeHash calls
}

func (s *testSnapshot) TreeHash(p string) (string, error) {
	s.hashes.Add(1)
	h := sha256.New()
	err := fs.WalkDir(s.FS, p, func(q string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		h.Write([]byte(q + "\x00"))
		if d.IsDir() {
			return nil
		}
		data, err := fs.ReadFile(s.FS, q)
		if err != nil {
			return err
		}
		h.Write(data)
		h.Write([]byte{0})
		return nil
	})
	return hex.EncodeToString(h.Sum(nil)), err
}

// repoSnapshot is the fixture repository under testdata/repo.
func repoSnapshot(t testing.TB) *testSnapshot {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "repo"))
	if err != nil {
		t.Fatal(err)
	}
	return &testSnapshot{FS: os.DirFS(dir)}
}

// mapSnapshot builds a snapshot from path → content.
func mapSnapshot(files map[string]string) *testSnapshot {
	m := fstest.MapFS{}
	for p, c := range files {
		m[p] = &fstest.MapFile{Data: []byte(c)}
	}
	return &testSnapshot{FS: m}
}

func newTestRenderer(t testing.TB, opts Options) *Renderer {
	t.Helper()
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
