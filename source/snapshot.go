package source

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Snapshot is the tree of one commit as a read-only filesystem: it
// implements fs.FS, fs.ReadDirFS, fs.ReadFileFS and fs.StatFS with
// slash-separated paths and "." as the root, reading objects straight from
// the repository's object store (no checkout). Symbolic links inside the
// tree are followed by Open, ReadFile and Stat, and listed as links by
// ReadDir; a link that leaves the tree does not resolve. Every file's
// modification time is the commit time.
//
// A Snapshot is safe for concurrent use. It stays readable as long as it is
// referenced, even after the repository has moved on.
type Snapshot struct {
	store  *objectStore
	commit plumbing.Hash
	root   plumbing.Hash
	mtime  time.Time

	mu   sync.Mutex // guards dirs
	dirs map[plumbing.Hash]*treeData
}

// treeData is a decoded tree, immutable once built.
type treeData struct {
	entries []treeEntry // sorted by name, as fs.ReadDir wants
}

type treeEntry struct {
	name string
	mode filemode.FileMode
	hash plumbing.Hash
}

func (t *treeData) find(name string) (treeEntry, bool) {
	i, ok := slices.BinarySearchFunc(t.entries, name, func(e treeEntry, n string) int {
		return strings.Compare(e.name, n)
	})
	if !ok {
		return treeEntry{}, false
	}
	return t.entries[i], true
}

func newSnapshot(store *objectStore, commit, root plumbing.Hash, mtime time.Time) *Snapshot {
	return &Snapshot{store: store, commit: commit, root: root, mtime: mtime, dirs: map[plumbing.Hash]*treeData{}}
}

// Commit is the hash of the commit whose tree this is.
func (s *Snapshot) Commit() string { return s.commit.String() }

// TreeHash returns the git object hash of the tree (for a folder) or blob
// (for a file) at name; "." is the root tree. Equal hashes mean equal
// content, so a consumer can skip work when its inputs did not change.
func (s *Snapshot) TreeHash(name string) (string, error) {
	e, err := s.lookup("treehash", name, true)
	if err != nil {
		return "", err
	}
	return e.hash.String(), nil
}

// Open opens the named file or folder.
func (s *Snapshot) Open(name string) (fs.File, error) {
	e, err := s.lookup("open", name, true)
	if err != nil {
		return nil, err
	}
	base := path.Base(name)
	if e.mode == filemode.Dir {
		t, err := s.tree(e.hash)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		return &snapDir{info: s.info(base, e), snap: s, tree: t}, nil
	}
	data, err := s.blob(e.hash)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	info := s.info(base, e)
	info.size = int64(len(data))
	return &snapFile{info: info, Reader: bytes.NewReader(data)}, nil
}

// ReadFile reads the named file. The returned slice is the caller's.
func (s *Snapshot) ReadFile(name string) ([]byte, error) {
	e, err := s.lookup("readfile", name, true)
	if err != nil {
		return nil, err
	}
	if e.mode == filemode.Dir {
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: errors.New("is a directory")}
	}
	data, err := s.blob(e.hash)
	if err != nil {
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: err}
	}
	return data, nil
}

// ReadDir lists the named folder, sorted by name.
func (s *Snapshot) ReadDir(name string) ([]fs.DirEntry, error) {
	e, err := s.lookup("readdir", name, true)
	if err != nil {
		return nil, err
	}
	if e.mode != filemode.Dir {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	t, err := s.tree(e.hash)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	out := make([]fs.DirEntry, len(t.entries))
	for i, c := range t.entries {
		out[i] = s.info(c.name, c)
	}
	return out, nil
}

// Stat describes the named file or folder.
func (s *Snapshot) Stat(name string) (fs.FileInfo, error) {
	e, err := s.lookup("stat", name, true)
	if err != nil {
		return nil, err
	}
	return s.info(path.Base(name), e), nil
}

// maxSymlinks bounds link resolution, as the kernel's ELOOP does.
const maxSymlinks = 40

// lookup resolves name to a tree entry, following symbolic links in every
// component (and in the last one when follow is set).
func (s *Snapshot) lookup(op, name string, follow bool) (treeEntry, error) {
	if !fs.ValidPath(name) {
		return treeEntry{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	cur := treeEntry{name: ".", mode: filemode.Dir, hash: s.root}
	if name == "." {
		return cur, nil
	}
	parts := strings.Split(name, "/")
	var done []string // resolved components, for relative link targets
	hops := 0
	for len(parts) > 0 {
		t, err := s.tree(cur.hash)
		if err != nil {
			return treeEntry{}, &fs.PathError{Op: op, Path: name, Err: err}
		}
		e, ok := t.find(parts[0])
		if !ok {
			return treeEntry{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		last := len(parts) == 1
		if e.mode == filemode.Symlink && (!last || follow) {
			if hops++; hops > maxSymlinks {
				return treeEntry{}, &fs.PathError{Op: op, Path: name, Err: errors.New("too many levels of symbolic links")}
			}
			target, err := s.blob(e.hash)
			if err != nil {
				return treeEntry{}, &fs.PathError{Op: op, Path: name, Err: err}
			}
			joined := path.Join(append(append([]string{}, done...), string(target))...)
			if path.IsAbs(string(target)) || joined == ".." || strings.HasPrefix(joined, "../") {
				return treeEntry{}, &fs.PathError{Op: op, Path: name, Err: fmt.Errorf("symbolic link to %q leaves the tree: %w", target, fs.ErrNotExist)}
			}
			// Restart from the root with the link's target in place.
			rest := parts[1:]
			parts = append(strings.Split(joined, "/"), rest...)
			if joined == "." {
				parts = rest
			}
			done = nil
			cur = treeEntry{name: ".", mode: filemode.Dir, hash: s.root}
			if len(parts) == 0 {
				return cur, nil
			}
			continue
		}
		if !last && e.mode != filemode.Dir {
			return treeEntry{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		if e.mode == filemode.Submodule {
			return treeEntry{}, &fs.PathError{Op: op, Path: name, Err: fmt.Errorf("submodule %s is not part of this repository: %w", e.hash, fs.ErrNotExist)}
		}
		done = append(done, parts[0])
		cur = e
		parts = parts[1:]
	}
	return cur, nil
}

// tree returns the decoded tree h, decoding it once per snapshot.
func (s *Snapshot) tree(h plumbing.Hash) (*treeData, error) {
	s.mu.Lock()
	t, ok := s.dirs[h]
	s.mu.Unlock()
	if ok {
		return t, nil
	}
	s.store.mu.Lock()
	gt, err := object.GetTree(s.store.st, h)
	s.store.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("tree %s of commit %s: %w", h, s.commit, err)
	}
	t = &treeData{entries: make([]treeEntry, len(gt.Entries))}
	for i, e := range gt.Entries {
		t.entries[i] = treeEntry{name: e.Name, mode: e.Mode, hash: e.Hash}
	}
	// Git orders "a.b" before "a/" (folders sort as if named "a/"); fs
	// wants plain name order.
	slices.SortFunc(t.entries, func(a, b treeEntry) int { return strings.Compare(a.name, b.name) })
	s.mu.Lock()
	s.dirs[h] = t
	s.mu.Unlock()
	return t, nil
}

func (s *Snapshot) blob(h plumbing.Hash) ([]byte, error) {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	obj, err := s.store.st.EncodedObject(plumbing.BlobObject, h)
	if err != nil {
		return nil, fmt.Errorf("blob %s of commit %s: %w", h, s.commit, err)
	}
	r, err := obj.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	buf := make([]byte, 0, obj.Size())
	w := bytes.NewBuffer(buf)
	if _, err := io.Copy(w, r); err != nil {
		return nil, err
	}
	return w.Bytes(), nil
}

// blobSize reads a blob's size from the store without inflating it.
func (s *Snapshot) blobSize(h plumbing.Hash) int64 {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	n, err := s.store.st.EncodedObjectSize(h)
	if err != nil {
		return 0
	}
	return n
}

func (s *Snapshot) info(name string, e treeEntry) *fileInfo {
	return &fileInfo{name: name, entry: e, snap: s, size: -1}
}

// fileInfo is both the fs.FileInfo and the fs.DirEntry of a tree entry. The
// size of a file is read on first use, since listing a folder rarely needs
// it.
type fileInfo struct {
	name  string
	entry treeEntry
	snap  *Snapshot
	once  sync.Once
	size  int64
}

func (fi *fileInfo) Name() string { return fi.name }

func (fi *fileInfo) Size() int64 {
	fi.once.Do(func() {
		if fi.size < 0 && fi.entry.mode.IsFile() {
			fi.size = fi.snap.blobSize(fi.entry.hash)
		}
		if fi.size < 0 {
			fi.size = 0
		}
	})
	return fi.size
}

func (fi *fileInfo) Mode() fs.FileMode {
	switch fi.entry.mode {
	case filemode.Dir:
		return fs.ModeDir | 0o555
	case filemode.Executable:
		return 0o555
	case filemode.Symlink:
		return fs.ModeSymlink | 0o777
	case filemode.Submodule:
		return fs.ModeIrregular
	}
	return 0o444
}

func (fi *fileInfo) ModTime() time.Time         { return fi.snap.mtime }
func (fi *fileInfo) IsDir() bool                { return fi.entry.mode == filemode.Dir }
func (fi *fileInfo) Sys() any                   { return nil }
func (fi *fileInfo) Type() fs.FileMode          { return fi.Mode().Type() }
func (fi *fileInfo) Info() (fs.FileInfo, error) { return fi, nil }
func (fi *fileInfo) String() string             { return fs.FormatFileInfo(fi) }

// snapFile is an open file: its content is read whole on Open, as files in
// a GitOps repository are small manifests.
type snapFile struct {
	info *fileInfo
	*bytes.Reader
}

func (f *snapFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *snapFile) Close() error               { return nil }

// snapDir is an open folder.
type snapDir struct {
	info *fileInfo
	snap *Snapshot
	tree *treeData
	pos  int
}

func (d *snapDir) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *snapDir) Close() error               { return nil }
func (d *snapDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.name, Err: errors.New("is a directory")}
}

// ReadDir implements fs.ReadDirFile.
func (d *snapDir) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.tree.entries[d.pos:]
	if n > 0 && len(rest) == 0 {
		return nil, io.EOF
	}
	if n > 0 && n < len(rest) {
		rest = rest[:n]
	}
	out := make([]fs.DirEntry, len(rest))
	for i, e := range rest {
		out[i] = d.snap.info(e.name, e)
	}
	d.pos += len(rest)
	return out, nil
}
