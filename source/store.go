package source

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// Where a repository's store keeps its references.
const (
	// headRefPrefix + branch: the remote head at the last fetch.
	headRefPrefix = "refs/heads/"
	// goodRefPrefix + branch: the last good revision (may lag the head when
	// the head failed signature verification).
	goodRefPrefix = "refs/baton/good/"
	// pendingRefPrefix + hash: a commit made by Commit and not pushed yet.
	pendingRefPrefix = "refs/baton/pending/"
)

// objectStore is one generation of a repository's on-disk object store: a
// bare git folder that go-git writes. It holds, for every commit in it, the
// complete tree of that commit, but usually not the commit's parents (the
// store is shallow).
//
// Disk stays bounded by generations: each fetch adds one pack file; when a
// store holds too many packs, the repository copies what its references
// still need into a fresh generation (see Repository.compactLocked). An old
// generation is deleted once no Snapshot refers to it any more, so a reader
// that still holds an old Snapshot never sees its objects disappear.
// go-git cannot do this in place: its Prune handles loose objects only and
// RepackObjects walks parents, which a shallow store does not have.
type objectStore struct {
	dir string
	// mu serialises every use of st: go-git's filesystem storage fills its
	// pack index and caches lazily, without locks.
	mu sync.Mutex
	st *filesystem.Storage
}

// maxOpenPacks bounds the pack files a store keeps open; reading a file
// from a pack otherwise costs an open and a close.
const maxOpenPacks = 16

func openObjectStore(dir string) (*objectStore, error) {
	// Not ExclusiveAccess: with it, go-git v5.19's HasEncodedObject answers
	// "not found" for every packed object (the loose-object list it caches
	// short-circuits the pack lookup).
	st := filesystem.NewStorageWithOptions(osfs.New(dir), cache.NewObjectLRU(16*cache.MiByte),
		filesystem.Options{MaxOpenDescriptors: maxOpenPacks})
	if err := st.Init(); err != nil {
		return nil, fmt.Errorf("object store %s: %w", dir, err)
	}
	return &objectStore{dir: dir, st: st}, nil
}

// retire arranges for the store's folder to be removed once nothing refers
// to the store: the repository has moved on to a newer generation and the
// last Snapshot reading this one has been dropped.
func (s *objectStore) retire() {
	runtime.AddCleanup(s, func(r retired) {
		_ = r.st.Close()
		_ = os.RemoveAll(r.dir)
	}, retired{dir: s.dir, st: s.st})
}

// retired is what the cleanup of a retired store needs; it must not refer to
// the store itself, or the store would never be collected.
type retired struct {
	dir string
	st  *filesystem.Storage
}

func (s *objectStore) refLocked(name string) (plumbing.Hash, bool) {
	ref, err := s.st.Reference(plumbing.ReferenceName(name))
	if err != nil || ref.Type() != plumbing.HashReference {
		return plumbing.ZeroHash, false
	}
	return ref.Hash(), true
}

func (s *objectStore) setRefLocked(name string, h plumbing.Hash) error {
	return s.st.SetReference(plumbing.NewHashReference(plumbing.ReferenceName(name), h))
}

func (s *objectStore) removeRefLocked(name string) error {
	return s.st.RemoveReference(plumbing.ReferenceName(name))
}

// refsLocked returns every hash reference in the store.
func (s *objectStore) refsLocked() (map[string]plumbing.Hash, error) {
	iter, err := s.st.IterReferences()
	if err != nil {
		return nil, err
	}
	defer iter.Close()
	refs := map[string]plumbing.Hash{}
	err = iter.ForEach(func(r *plumbing.Reference) error {
		if r.Type() == plumbing.HashReference {
			refs[r.Name().String()] = r.Hash()
		}
		return nil
	})
	return refs, err
}

func (s *objectStore) hasLocked(h plumbing.Hash) bool {
	return s.st.HasEncodedObject(h) == nil
}

func (s *objectStore) commitLocked(h plumbing.Hash) (*object.Commit, error) {
	return object.GetCommit(s.st, h)
}

// addShallowLocked records commits whose parents the store lacks, and drops
// those the server says are complete now.
func (s *objectStore) addShallowLocked(add, remove []plumbing.Hash) error {
	if len(add) == 0 && len(remove) == 0 {
		return nil
	}
	cur, err := s.st.Shallow()
	if err != nil {
		return err
	}
	set := map[plumbing.Hash]bool{}
	for _, h := range cur {
		set[h] = true
	}
	for _, h := range add {
		set[h] = true
	}
	for _, h := range remove {
		delete(set, h)
	}
	out := make([]plumbing.Hash, 0, len(set))
	for h := range set {
		out = append(out, h)
	}
	return s.st.SetShallow(out)
}

func (s *objectStore) packCountLocked() (int, error) {
	packs, err := s.st.ObjectPacks()
	return len(packs), err
}

// missingObjects lists what dst lacks to hold commit c completely: the
// commit, then every tree and blob of its tree that dst does not have. A tree
// dst already has is skipped whole, since a store only ever holds complete
// trees. The commit's parents are not followed.
func missingObjects(src storer.EncodedObjectStorer, dstHas func(plumbing.Hash) bool, c plumbing.Hash) ([]plumbing.Hash, error) {
	if dstHas(c) {
		return nil, nil
	}
	commit, err := object.GetCommit(src, c)
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", c, err)
	}
	out := []plumbing.Hash{c}
	seen := map[plumbing.Hash]bool{}
	var walk func(tree plumbing.Hash) error
	walk = func(tree plumbing.Hash) error {
		if seen[tree] || dstHas(tree) {
			return nil
		}
		seen[tree] = true
		out = append(out, tree)
		t, err := object.GetTree(src, tree)
		if err != nil {
			return fmt.Errorf("tree %s: %w", tree, err)
		}
		for _, e := range t.Entries {
			switch {
			case e.Mode.IsFile():
				if !seen[e.Hash] && !dstHas(e.Hash) {
					seen[e.Hash] = true
					out = append(out, e.Hash)
				}
			case e.Mode == 0o040000:
				if err := walk(e.Hash); err != nil {
					return err
				}
			}
			// Submodule entries point at commits of another repository:
			// there is nothing to copy.
		}
		return nil
	}
	if err := walk(commit.TreeHash); err != nil {
		return nil, err
	}
	return out, nil
}

// writePack writes the objects, read from src, into dst as one new pack.
func writePack(dst *filesystem.Storage, src storer.EncodedObjectStorer, hashes []plumbing.Hash) (err error) {
	if len(hashes) == 0 {
		return nil
	}
	w, err := dst.PackfileWriter()
	if err != nil {
		return err
	}
	defer func() {
		if cerr := w.Close(); err == nil {
			err = cerr
		}
	}()
	// Buffered: the encoder writes each object in several small pieces.
	bw := bufio.NewWriterSize(w, 64<<10)
	if _, err = packfile.NewEncoder(bw, plainObjects{src}, false).Encode(hashes, packWindow); err != nil {
		return err
	}
	return bw.Flush()
}

// packWindow is how many objects the pack encoder compares when looking for
// deltas. None: manifests are small and mostly distinct, zlib already
// shrinks them, and a window of 10 doubles the time of a compaction.
const packWindow = 0

// plainObjects hides every method but those of EncodedObjectStorer. The
// pack encoder then reads objects through EncodedObject, which go-git looks
// up in the packs first, instead of DeltaObject, which stats the loose
// object path of every object first (a few system calls each).
type plainObjects struct {
	storer.EncodedObjectStorer
}

// generations manages the numbered store folders under a repository's cache
// folder and the CURRENT file that names the one in use.
type generations struct {
	root string
}

const currentFile = "CURRENT"

// open returns the current generation, creating the first one, and removes
// the folders of other generations (left over by a previous process).
func (g generations) open() (*objectStore, int, error) {
	if err := os.MkdirAll(g.root, 0o755); err != nil {
		return nil, 0, err
	}
	n := 0
	if b, err := os.ReadFile(filepath.Join(g.root, currentFile)); err == nil {
		n, _ = strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(string(b)), "gen-"))
	}
	if n < 1 {
		n = 1
	}
	if _, err := os.Stat(g.dir(n)); errors.Is(err, os.ErrNotExist) {
		n = 1
		_ = os.RemoveAll(g.dir(n))
	}
	st, err := openObjectStore(g.dir(n))
	if err != nil {
		return nil, 0, err
	}
	if err := g.setCurrent(n); err != nil {
		return nil, 0, err
	}
	entries, err := os.ReadDir(g.root)
	if err != nil {
		return nil, 0, err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "gen-") && e.Name() != filepath.Base(g.dir(n)) {
			_ = os.RemoveAll(filepath.Join(g.root, e.Name()))
		}
	}
	return st, n, nil
}

func (g generations) dir(n int) string {
	return filepath.Join(g.root, "gen-"+strconv.Itoa(n))
}

// setCurrent names generation n in CURRENT, atomically.
func (g generations) setCurrent(n int) error {
	tmp := filepath.Join(g.root, currentFile+".tmp")
	if err := os.WriteFile(tmp, []byte("gen-"+strconv.Itoa(n)+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(g.root, currentFile))
}

// compact copies the objects that the references of old need into a new
// generation n and returns it. Every copied commit is shallow there.
func (g generations) compact(old *objectStore, n int) (*objectStore, error) {
	dir := g.dir(n)
	_ = os.RemoveAll(dir)
	fresh, err := openObjectStore(dir)
	if err != nil {
		return nil, err
	}
	old.mu.Lock()
	defer old.mu.Unlock()
	refs, err := old.refsLocked()
	if err != nil {
		return nil, err
	}
	have := map[plumbing.Hash]bool{}
	var all, commits []plumbing.Hash
	for _, h := range refs {
		if have[h] {
			continue
		}
		objs, err := missingObjects(old.st, func(x plumbing.Hash) bool { return have[x] }, h)
		if err != nil {
			return nil, fmt.Errorf("compact %s: %w", old.dir, err)
		}
		for _, o := range objs {
			have[o] = true
		}
		all = append(all, objs...)
		commits = append(commits, h)
	}
	if err := writePack(fresh.st, old.st, all); err != nil {
		return nil, fmt.Errorf("compact %s: %w", old.dir, err)
	}
	for name, h := range refs {
		if err := fresh.setRefLocked(name, h); err != nil {
			return nil, err
		}
	}
	if err := fresh.addShallowLocked(commits, nil); err != nil {
		return nil, err
	}
	return fresh, nil
}
