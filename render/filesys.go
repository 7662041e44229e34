package render

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"time"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// errReadOnly is returned by every write on the snapshot filesystem.
var errReadOnly = errors.New("snapshot filesystem is read-only")

// ErrPathEscape reports a path that climbs above the snapshot root.
var ErrPathEscape = errors.New("path escapes the snapshot root")

// snapshotFS adapts an io/fs tree (a git revision) to kustomize's
// filesys.FileSystem. Kustomize speaks absolute OS paths; the snapshot root is
// presented as "/", so "/overlays/prod" is "overlays/prod" in the tree.
// Nothing outside the tree is reachable: there is no disk behind it.
//
// overrides holds files that exist only for this build (the kustomization
// generated for a plain-YAML folder), keyed by slash path inside the tree.
type snapshotFS struct {
	tree      fs.FS
	overrides map[string][]byte
	// limits checks every file read; nil checks nothing.
	limits *limiter
}

var _ filesys.FileSystem = (*snapshotFS)(nil)

func newSnapshotFS(tree fs.FS, overrides map[string][]byte) *snapshotFS {
	return &snapshotFS{tree: tree, overrides: overrides}
}

// treePath turns a kustomize path (absolute, or relative to the root) into a
// path inside the tree ("." is the root). It walks the segments itself rather
// than trusting path.Clean, which would silently clamp "/../../etc" to "/etc".
func treePath(name string) (string, error) {
	name = filepath.ToSlash(name)
	var parts []string
	for _, seg := range strings.Split(name, "/") {
		switch seg {
		case "", ".":
		case "..":
			if len(parts) == 0 {
				return "", fmt.Errorf("%s: %w", name, ErrPathEscape)
			}
			parts = parts[:len(parts)-1]
		default:
			parts = append(parts, seg)
		}
	}
	if len(parts) == 0 {
		return ".", nil
	}
	return strings.Join(parts, "/"), nil
}

// osPath is the kustomize-side name of a tree path.
func osPath(p string) string {
	if p == "." {
		return filesys.Separator
	}
	return filesys.Separator + filepath.FromSlash(p)
}

func (s *snapshotFS) stat(name string) (fs.FileInfo, string, error) {
	p, err := treePath(name)
	if err != nil {
		return nil, "", err
	}
	fi, err := s.statTree(p)
	return fi, p, err
}

// statTree stats a tree path, overrides included.
func (s *snapshotFS) statTree(p string) (fs.FileInfo, error) {
	if data, ok := s.overrides[p]; ok {
		return overrideInfo{name: path.Base(p), size: int64(len(data))}, nil
	}
	return fs.Stat(s.tree, p)
}

// readTree reads a tree path, overrides included. A file over the limits
// is refused: by its size before it is read, by its YAML aliases before
// anyone parses it.
func (s *snapshotFS) readTree(p string) ([]byte, error) {
	if data, ok := s.overrides[p]; ok {
		return append([]byte(nil), data...), nil
	}
	if s.limits != nil {
		fi, err := fs.Stat(s.tree, p)
		if err != nil {
			return nil, err
		}
		if err := s.limits.checkSize(p, fi.Size()); err != nil {
			return nil, err
		}
	}
	data, err := fs.ReadFile(s.tree, p)
	if err != nil {
		return nil, err
	}
	if err := s.limits.checkContent(p, data); err != nil {
		return nil, err
	}
	return data, nil
}

// Create refuses: the snapshot is read-only.
func (s *snapshotFS) Create(name string) (filesys.File, error) {
	return nil, fmt.Errorf("create %s: %w", name, errReadOnly)
}

// Mkdir refuses: the snapshot is read-only.
func (s *snapshotFS) Mkdir(name string) error {
	return fmt.Errorf("mkdir %s: %w", name, errReadOnly)
}

// MkdirAll refuses: the snapshot is read-only.
func (s *snapshotFS) MkdirAll(name string) error {
	return fmt.Errorf("mkdir %s: %w", name, errReadOnly)
}

// RemoveAll refuses: the snapshot is read-only.
func (s *snapshotFS) RemoveAll(name string) error {
	return fmt.Errorf("remove %s: %w", name, errReadOnly)
}

// WriteFile refuses: the snapshot is read-only.
func (s *snapshotFS) WriteFile(name string, _ []byte) error {
	return fmt.Errorf("write %s: %w", name, errReadOnly)
}

// Open opens a file or directory for reading.
func (s *snapshotFS) Open(name string) (filesys.File, error) {
	p, err := treePath(name)
	if err != nil {
		return nil, err
	}
	if data, ok := s.overrides[p]; ok {
		return &readOnlyFile{
			r:    strings.NewReader(string(data)),
			info: overrideInfo{name: path.Base(p), size: int64(len(data))},
		}, nil
	}
	if s.limits != nil {
		// Files go through readTree and its limits; only folders are
		// opened in the tree.
		fi, err := fs.Stat(s.tree, p)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			data, err := s.readTree(p)
			if err != nil {
				return nil, err
			}
			return &readOnlyFile{r: bytes.NewReader(data), info: fi}, nil
		}
	}
	f, err := s.tree.Open(p)
	if err != nil {
		return nil, err
	}
	return &readOnlyFile{r: f, c: f, stat: f.Stat}, nil
}

// IsDir reports whether name is a directory of the snapshot.
func (s *snapshotFS) IsDir(name string) bool {
	fi, _, err := s.stat(name)
	return err == nil && fi.IsDir()
}

// Exists reports whether name exists in the snapshot.
func (s *snapshotFS) Exists(name string) bool {
	_, _, err := s.stat(name)
	return err == nil
}

// ReadDir lists the entry names of a directory, in lexical order.
func (s *snapshotFS) ReadDir(name string) ([]string, error) {
	p, err := treePath(name)
	if err != nil {
		return nil, err
	}
	entries, err := fs.ReadDir(s.tree, p)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries)+len(s.overrides))
	seen := make(map[string]bool, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
		seen[e.Name()] = true
	}
	for o := range s.overrides {
		if path.Dir(o) == p && !seen[path.Base(o)] {
			names = append(names, path.Base(o))
		}
	}
	return names, nil
}

// CleanedAbs splits name into a confirmed directory and a file name (empty
// when name is itself a directory), as kustomize's loaders expect.
func (s *snapshotFS) CleanedAbs(name string) (filesys.ConfirmedDir, string, error) {
	fi, p, err := s.stat(name)
	if err != nil {
		return "", "", err
	}
	if fi.IsDir() {
		return filesys.ConfirmedDir(osPath(p)), "", nil
	}
	return filesys.ConfirmedDir(osPath(path.Dir(p))), path.Base(p), nil
}

// Glob returns the paths matching pattern, hiding dot files unless the
// pattern names them, as kustomize's disk filesystem does.
func (s *snapshotFS) Glob(pattern string) ([]string, error) {
	p, err := treePath(pattern)
	if err != nil {
		return nil, err
	}
	matches, err := fs.Glob(s.tree, p)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(matches))
	for i, m := range matches {
		out[i] = osPath(m)
	}
	if filesys.IsHiddenFilePath(pattern) {
		return out, nil
	}
	return filesys.RemoveHiddenFiles(out), nil
}

// ReadFile returns the content of a file of the snapshot.
func (s *snapshotFS) ReadFile(name string) ([]byte, error) {
	p, err := treePath(name)
	if err != nil {
		return nil, err
	}
	return s.readTree(p)
}

// Walk visits name and everything below it in lexical order.
func (s *snapshotFS) Walk(name string, walkFn filepath.WalkFunc) error {
	p, err := treePath(name)
	if err != nil {
		return err
	}
	return fs.WalkDir(s.tree, p, func(q string, d fs.DirEntry, err error) error {
		if err != nil {
			return walkFn(osPath(q), nil, err)
		}
		fi, err := d.Info()
		return walkFn(osPath(q), fi, err)
	})
}

// readOnlyFile is a filesys.File whose writes fail.
type readOnlyFile struct {
	r    io.Reader
	c    io.Closer
	stat func() (fs.FileInfo, error)
	info fs.FileInfo
}

func (f *readOnlyFile) Read(b []byte) (int, error) { return f.r.Read(b) }

func (f *readOnlyFile) Write([]byte) (int, error) { return 0, errReadOnly }

func (f *readOnlyFile) Close() error {
	if f.c == nil {
		return nil
	}
	return f.c.Close()
}

func (f *readOnlyFile) Stat() (fs.FileInfo, error) {
	if f.stat != nil {
		return f.stat()
	}
	return f.info, nil
}

// overrideInfo describes a file that exists only for one build.
type overrideInfo struct {
	name string
	size int64
}

func (o overrideInfo) Name() string       { return o.name }
func (o overrideInfo) Size() int64        { return o.size }
func (o overrideInfo) Mode() fs.FileMode  { return 0o444 }
func (o overrideInfo) ModTime() time.Time { return time.Time{} }
func (o overrideInfo) IsDir() bool        { return false }
func (o overrideInfo) Sys() any           { return nil }
