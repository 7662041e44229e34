// Package worktree presents a folder on disk (a git working tree, with its
// uncommitted changes) as the read-only snapshot the renderer reads a
// commit through, so that `baton render --path` and `baton diff --path`
// build exactly what the agent would build once the tree is committed.
//
// What is guaranteed:
//   - Nothing outside the folder is reachable: every access goes through
//     an os.Root, so ".." and symbolic links that leave the folder (or are
//     absolute) fail, as they do in a commit's snapshot. Links inside the
//     folder are followed.
//   - What git would not commit is not there: the .git folder and the
//     paths that the .gitignore files of the tree ignore.
//
// What is not: the tree is read live, so a file changed during a render is
// read as it is at that moment; git's global and per-repository excludes
// ($XDG_CONFIG_HOME/git/ignore, .git/info/exclude) are not read.
package worktree

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing/format/gitignore"

	"github.com/baton-gitops/baton/internal/fsdir"
)

// Snapshot is a folder on disk as an io/fs tree with slash paths and "."
// as the root. It implements render.Snapshot. Close it when done.
type Snapshot struct {
	dir   string
	root  *os.Root
	fsys  fs.FS
	nonce string

	// mu guards patterns: the .gitignore patterns of each folder read so
	// far, by slash path.
	mu       sync.Mutex
	patterns map[string][]gitignore.Pattern
}

// Open opens dir as a snapshot.
func Open(dir string) (*Snapshot, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("working tree %s: %w", dir, err)
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("working tree: %w", err)
	}
	nonce := make([]byte, 8)
	_, _ = rand.Read(nonce)
	return &Snapshot{dir: abs, root: root, fsys: root.FS(), nonce: hex.EncodeToString(nonce),
		patterns: map[string][]gitignore.Pattern{}}, nil
}

// Dir is the folder's absolute path.
func (s *Snapshot) Dir() string { return s.dir }

// Close releases the folder.
func (s *Snapshot) Close() error { return s.root.Close() }

// TreeHash returns a token that is equal for equal names of this snapshot
// only: a working tree has no git tree hash, and it may change between two
// reads, so no two snapshots (and no cached render) ever share one.
func (s *Snapshot) TreeHash(name string) (string, error) {
	if _, err := s.Stat(name); err != nil {
		return "", err
	}
	return "worktree-" + s.nonce + ":" + name, nil
}

// Open opens the named file or folder.
func (s *Snapshot) Open(name string) (fs.File, error) {
	if err := s.check("open", name); err != nil {
		return nil, err
	}
	f, err := s.fsys.Open(name)
	if err != nil {
		return nil, s.wrap("open", name, err)
	}
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		// A folder lists what ReadDir lists, not what is on disk.
		return &dirFile{File: f, Pages: fsdir.Pages{List: func() ([]fs.DirEntry, error) { return s.ReadDir(name) }}}, nil
	}
	return f, nil
}

// dirFile is an open folder whose listing leaves out what git would not
// commit.
type dirFile struct {
	fs.File
	fsdir.Pages
}

// ReadFile reads the named file.
func (s *Snapshot) ReadFile(name string) ([]byte, error) {
	if err := s.check("readfile", name); err != nil {
		return nil, err
	}
	b, err := fs.ReadFile(s.fsys, name)
	return b, s.wrap("readfile", name, err)
}

// Stat describes the named file or folder.
func (s *Snapshot) Stat(name string) (fs.FileInfo, error) {
	if err := s.check("stat", name); err != nil {
		return nil, err
	}
	fi, err := fs.Stat(s.fsys, name)
	return fi, s.wrap("stat", name, err)
}

// ReadDir lists the named folder, sorted by name, without what git would
// not commit.
func (s *Snapshot) ReadDir(name string) ([]fs.DirEntry, error) {
	if err := s.check("readdir", name); err != nil {
		return nil, err
	}
	entries, err := fs.ReadDir(s.fsys, name)
	if err != nil {
		return nil, s.wrap("readdir", name, err)
	}
	out := entries[:0]
	for _, e := range entries {
		p := e.Name()
		if name != "." {
			p = name + "/" + p
		}
		if !s.hidden(p, e.IsDir()) {
			out = append(out, e)
		}
	}
	return out, nil
}

// check refuses invalid names and hides what git would not commit.
func (s *Snapshot) check(op, name string) error {
	if !fs.ValidPath(name) {
		return &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	if name == "." {
		return nil
	}
	// A folder's own ignore rule hides everything below it.
	parts := strings.Split(name, "/")
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		isDir := i < len(parts)-1
		if !isDir {
			if fi, err := fs.Stat(s.fsys, p); err == nil {
				isDir = fi.IsDir()
			}
		}
		if s.hidden(p, isDir) {
			return &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
	}
	return nil
}

// hidden reports whether git would leave p out of a commit.
func (s *Snapshot) hidden(p string, isDir bool) bool {
	parts := strings.Split(p, "/")
	if parts[len(parts)-1] == ".git" {
		return true
	}
	var ps []gitignore.Pattern
	for i := range parts {
		ps = append(ps, s.ignoreFile(strings.Join(parts[:i], "/"))...)
	}
	return len(ps) > 0 && gitignore.NewMatcher(ps).Match(parts, isDir)
}

// ignoreFile returns the patterns of dir's .gitignore ("" is the root).
func (s *Snapshot) ignoreFile(dir string) []gitignore.Pattern {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ps, ok := s.patterns[dir]; ok {
		return ps
	}
	file := ".gitignore"
	var domain []string
	if dir != "" {
		file = dir + "/.gitignore"
		domain = strings.Split(dir, "/")
	}
	var ps []gitignore.Pattern
	if b, err := fs.ReadFile(s.fsys, file); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			line := strings.TrimRight(sc.Text(), "\r")
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			ps = append(ps, gitignore.ParsePattern(line, domain))
		}
	}
	s.patterns[dir] = ps
	return ps
}

// wrap names what os.Root refused in the words the git snapshot uses.
func (s *Snapshot) wrap(op, name string, err error) error {
	if err == nil {
		return nil
	}
	if strings.Contains(err.Error(), "escapes from parent") {
		return &fs.PathError{Op: op, Path: name, Err: fmt.Errorf("symbolic link leaves the tree %s: %w", s.dir, fs.ErrNotExist)}
	}
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path != name {
		return &fs.PathError{Op: op, Path: name, Err: pe.Err}
	}
	return err
}

// Top returns the top of the git working tree that holds dir: the nearest
// folder at or above it with a .git entry, or dir itself when none has
// one (a tarball in CI). rel is dir's slash path below it.
func Top(dir string) (top, rel string, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", "", err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", "", fmt.Errorf("--path: %w", err)
	}
	if !fi.IsDir() {
		return "", "", fmt.Errorf("--path %s is a file, not a folder", dir)
	}
	for cur := abs; ; cur = filepath.Dir(cur) {
		if _, err := os.Lstat(filepath.Join(cur, ".git")); err == nil {
			r, err := filepath.Rel(cur, abs)
			if err != nil {
				return "", "", err
			}
			return cur, path.Clean(filepath.ToSlash(r)), nil
		}
		if filepath.Dir(cur) == cur {
			return abs, ".", nil
		}
	}
}
