package source

import (
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/baton-gitops/baton/internal/testenv/gitserver"
)

// dirSize sums the sizes of the files below dir.
func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // a generation being removed
			}
			return err
		}
		if !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func generationsIn(t *testing.T, cache string) int {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(cache, "repos", "*", "gen-*"))
	return len(dirs)
}

// randomText is hex of random bytes: it compresses about 2:1 and no better,
// so that pack sizes track what is stored.
func randomText(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n/2)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func TestDiskStaysBounded(t *testing.T) {
	const fileSize, commits, maxPacks = 40 << 10, 16, 3
	srv := startServer(t)
	repo := srv.CreateRepo(t, "app", map[string]string{"big.txt": randomText(t, fileSize), "small": "s"})
	cache := t.TempDir()
	r := openRepo(t, httpsSettings(t, srv, "app", "env/dev"), Options{CacheDir: cache, MaxPacks: maxPacks})
	first := branchResult(t, mustPoll(t, r), "env/dev").Revision
	firstBig, _ := first.Snapshot.ReadFile("big.txt")

	compactions := 0
	for range commits {
		repo.Commit(t, "env/dev", gitserver.Change{Write: map[string]string{"big.txt": randomText(t, fileSize)}})
		res := mustPoll(t, r)
		if res.Compacted {
			compactions++
		}
	}
	if compactions < commits/maxPacks-1 {
		t.Fatalf("%d compactions for %d fetches with at most %d packs", compactions, commits, maxPacks)
	}
	// A snapshot handed out before every compaction still reads.
	if b, err := first.Snapshot.ReadFile("big.txt"); err != nil || string(b) != string(firstBig) {
		t.Fatalf("old snapshot after compactions: %v", err)
	}

	// Live data is one version of big.txt (fileSize/2 once compressed); at
	// most maxPacks fetched versions wait for the next compaction. Without
	// compaction the cache would hold every version.
	bound := int64((maxPacks+2)*fileSize/2) + 32<<10
	first, firstBig = nil, nil
	deadline := time.Now().Add(20 * time.Second)
	for {
		// Old generations go once nothing refers to them: let the
		// collector see that.
		runtime.GC()
		size := dirSize(t, cache)
		if size <= bound && generationsIn(t, cache) == 1 {
			t.Logf("cache: %d bytes (bound %d; unpruned about %d)", size, bound, commits*fileSize/2)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cache holds %d bytes in %d generations, want at most %d bytes in 1 (unpruned: about %d)",
				size, generationsIn(t, cache), bound, commits*fileSize/2)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline, not synchronising
	}

	// And the current revision still reads after all that.
	cur := r.Revision("env/dev")
	if b, err := cur.Snapshot.ReadFile("small"); err != nil || strings.TrimSpace(string(b)) != "s" {
		t.Fatalf("current snapshot: %q %v", b, err)
	}
}
