package source

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// localRemote reads and writes a repository folder on this machine
// (file:// URLs) with go-git directly: no git binary, no server. Fetching
// copies objects between the two object stores.
type localRemote struct {
	path string
}

func (l *localRemote) hostKeyFailed() bool { return false }
func (l *localRemote) close()              {}

// open opens the repository folder: a bare repository, or the .git folder of
// a working copy. bare reports which.
func (l *localRemote) open() (st *filesystem.Storage, bare bool, err error) {
	dir := l.path
	if fi, err := os.Stat(filepath.Join(dir, ".git")); err == nil && fi.IsDir() {
		dir = filepath.Join(dir, ".git")
	} else {
		bare = true
	}
	if _, err := os.Stat(filepath.Join(dir, "objects")); err != nil {
		return nil, false, fmt.Errorf("%s is not a git repository: %w", l.path, ErrUnreachable)
	}
	return filesystem.NewStorage(osfs.New(dir), cache.NewObjectLRU(8*cache.MiByte)), bare, nil
}

func (l *localRemote) list(ctx context.Context) (map[string]plumbing.Hash, error) {
	st, _, err := l.open()
	if err != nil {
		return nil, err
	}
	defer st.Close()
	iter, err := st.IterReferences()
	if err != nil {
		return nil, err
	}
	defer iter.Close()
	heads := map[string]plumbing.Hash{}
	err = iter.ForEach(func(r *plumbing.Reference) error {
		if r.Type() == plumbing.HashReference && strings.HasPrefix(r.Name().String(), headRefPrefix) {
			heads[r.Name().String()] = r.Hash()
		}
		return nil
	})
	return heads, err
}

func (l *localRemote) fetch(ctx context.Context, dst *objectStore, req fetchRequest) error {
	src, _, err := l.open()
	if err != nil {
		return err
	}
	defer src.Close()
	commits := req.wants
	if !req.since.IsZero() {
		if commits, err = historySince(ctx, src, req.wants, req.since); err != nil {
			return err
		}
	}
	dst.mu.Lock()
	defer dst.mu.Unlock()
	added := map[plumbing.Hash]bool{}
	has := func(h plumbing.Hash) bool { return added[h] || dst.hasLocked(h) }
	var all []plumbing.Hash
	for _, c := range commits {
		if err := ctx.Err(); err != nil {
			return err
		}
		objs, err := missingObjects(src, has, c)
		if err != nil {
			return err
		}
		for _, o := range objs {
			added[o] = true
		}
		all = append(all, objs...)
	}
	if err := checkSizes(src, all, req.maxBlob); err != nil {
		return err
	}
	if err := writePack(dst.st, src, all); err != nil {
		return err
	}
	return dst.addShallowLocked(commits, nil)
}

// historySince lists the commits reachable from heads whose committer time
// is not before since, the heads included.
func historySince(ctx context.Context, src *filesystem.Storage, heads []plumbing.Hash, since time.Time) ([]plumbing.Hash, error) {
	seen := map[plumbing.Hash]bool{}
	var out []plumbing.Hash
	queue := append([]plumbing.Hash(nil), heads...)
	for len(queue) > 0 && len(out) < maxHistoryWalk {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h := queue[0]
		queue = queue[1:]
		if seen[h] {
			continue
		}
		seen[h] = true
		c, err := object.GetCommit(src, h)
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			continue // a shallow source
		}
		if err != nil {
			return nil, err
		}
		out = append(out, h)
		if c.Committer.When.Before(since) {
			continue
		}
		queue = append(queue, c.ParentHashes...)
	}
	return out, nil
}

func (l *localRemote) push(ctx context.Context, src *objectStore, cmd pushCommand) error {
	dst, bare, err := l.open()
	if err != nil {
		return err
	}
	defer dst.Close()
	if !bare {
		return fmt.Errorf("%s: pushing to a file:// repository needs a bare repository", l.path)
	}
	name := plumbing.ReferenceName(headRefPrefix + cmd.branch)
	var cur plumbing.Hash
	if ref, err := dst.Reference(name); err == nil {
		cur = ref.Hash()
	} else if !errors.Is(err, plumbing.ErrReferenceNotFound) {
		return err
	}
	if cur != cmd.old {
		return leaseLost(cmd, cur)
	}
	src.mu.Lock()
	err = writePack(dst, src.st, cmd.objects)
	src.mu.Unlock()
	if err != nil {
		return fmt.Errorf("copy objects: %w", err)
	}
	var old *plumbing.Reference
	if !cmd.old.IsZero() {
		old = plumbing.NewHashReference(name, cmd.old)
	}
	// go-git checks the old value under a file lock; git's own writers use
	// lock files instead, so this is a compare-and-swap against other
	// go-git writers, and a best effort against the git CLI.
	err = dst.CheckAndSetReference(plumbing.NewHashReference(name, cmd.new), old)
	if errors.Is(err, storage.ErrReferenceHasChanged) {
		return fmt.Errorf("%w: branch changed during the push", ErrLeaseLost)
	}
	return err
}
