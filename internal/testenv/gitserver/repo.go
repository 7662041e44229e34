package gitserver

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
)

// EnvBranches are the environment branches CreateRepo makes.
var EnvBranches = []string{"env/dev", "env/staging", "env/prod"}

// Repo is a bare repository on a Server, changed with real git commands in a
// scratch clone. Its methods serialise on the clone and are safe for
// concurrent use.
type Repo struct {
	// Name is the repository's name in URLs (HTTPURL(Name), SSHURL(Name)).
	Name string
	// Path is the bare repository's folder.
	Path string

	srv  *Server
	mu   sync.Mutex // guards work: one git operation at a time in the scratch clone
	work string     // scratch clone, made on first use
}

// Change is one commit's worth of edits.
type Change struct {
	// Write maps slash-separated paths to their new content.
	Write map[string]string
	// Large maps paths to sizes: each file is that many 'x' bytes, written
	// in chunks, so that a test can commit a huge blob without holding it
	// in memory (and measuring itself instead of what it tests).
	Large map[string]int64
	// Delete lists paths to remove (files or whole folders).
	Delete []string
	// Message is the commit message; empty means "test change".
	Message string
	// Sign signs the commit with this key when not nil.
	Sign *SigningKey
}

// CreateRepo creates a bare repository called name whose environment
// branches (EnvBranches) all point to one commit holding files. HEAD names
// env/dev.
func (s *Server) CreateRepo(t testing.TB, name string, files map[string]string) *Repo {
	t.Helper()
	r := s.InitRepo(t, name)
	r.mu.Lock()
	defer r.mu.Unlock()
	work := r.workLocked(t)
	RunGit(t, work, nil, "checkout", "-q", "--orphan", EnvBranches[0])
	r.applyLocked(t, Change{Write: files, Message: "initial"})
	args := []string{"push", "-q", "origin"}
	for _, b := range EnvBranches {
		args = append(args, "HEAD:refs/heads/"+b)
	}
	RunGit(t, work, nil, args...)
	return r
}

// InitRepo creates an empty bare repository called name whose HEAD names
// env/dev.
func (s *Server) InitRepo(t testing.TB, name string) *Repo {
	t.Helper()
	p := s.RepoPath(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatalf("gitserver: %v", err)
	}
	RunGit(t, "", nil, "init", "-q", "--bare", "-b", EnvBranches[0], p)
	return &Repo{Name: name, Path: p, srv: s}
}

// Commit adds a commit with the change on top of branch (creating the branch
// if it does not exist), pushes it and returns its hash.
func (r *Repo) Commit(t testing.TB, branch string, ch Change) string {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	work := r.syncLocked(t)
	if _, err := TryGit(work, nil, "rev-parse", "-q", "--verify", "refs/remotes/origin/"+branch); err == nil {
		RunGit(t, work, nil, "checkout", "-q", "-B", branch, "refs/remotes/origin/"+branch)
	} else {
		RunGit(t, work, nil, "checkout", "-q", "--orphan", branch)
		RunGit(t, work, nil, "rm", "-rqf", "--ignore-unmatch", ".")
	}
	h := r.applyLocked(t, ch)
	RunGit(t, work, nil, "push", "-q", "origin", "HEAD:refs/heads/"+branch)
	return h
}

// ForcePush replaces branch with a new commit holding the change made on top
// of base (a commit hash reachable from some branch; empty for a new root
// commit), force-pushes it and returns its hash. The old head is no longer
// reachable from branch: history is rewritten.
func (r *Repo) ForcePush(t testing.TB, branch, base string, ch Change) string {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	work := r.syncLocked(t)
	if base == "" {
		RunGit(t, work, nil, "checkout", "-q", "--orphan", "rewrite-tmp")
		RunGit(t, work, nil, "rm", "-rqf", "--ignore-unmatch", ".")
	} else {
		RunGit(t, work, nil, "checkout", "-q", "-B", "rewrite-tmp", base)
	}
	h := r.applyLocked(t, ch)
	RunGit(t, work, nil, "push", "-q", "--force", "origin", "HEAD:refs/heads/"+branch)
	RunGit(t, work, nil, "checkout", "-q", "--detach")
	RunGit(t, work, nil, "branch", "-q", "-D", "rewrite-tmp")
	return h
}

// ResetBranch points branch at an existing commit, as a force-push would.
func (r *Repo) ResetBranch(t testing.TB, branch, commit string) {
	t.Helper()
	RunGit(t, r.Path, nil, "update-ref", "refs/heads/"+branch, commit)
}

// DeleteBranch removes branch from the repository.
func (r *Repo) DeleteBranch(t testing.TB, branch string) {
	t.Helper()
	RunGit(t, r.Path, nil, "update-ref", "-d", "refs/heads/"+branch)
}

// Head returns the commit hash branch points to.
func (r *Repo) Head(t testing.TB, branch string) string {
	t.Helper()
	return RunGit(t, r.Path, nil, "rev-parse", "refs/heads/"+branch)
}

// Parent returns the first parent of commit.
func (r *Repo) Parent(t testing.TB, commit string) string {
	t.Helper()
	return RunGit(t, r.Path, nil, "rev-parse", commit+"^")
}

// workLocked returns the scratch clone, creating it on first use.
func (r *Repo) workLocked(t testing.TB) string {
	t.Helper()
	if r.work != "" {
		return r.work
	}
	// The server's test owns the clone: a subtest that makes the first
	// change must not take the clone away when it ends.
	dir := filepath.Join(r.srv.tb.TempDir(), "work")
	RunGit(t, "", nil, "init", "-q", dir)
	RunGit(t, dir, nil, "remote", "add", "origin", r.Path)
	r.work = dir
	return dir
}

// syncLocked returns the scratch clone with the bare repository's current
// branches fetched, so that changes apply on the latest heads.
func (r *Repo) syncLocked(t testing.TB) string {
	t.Helper()
	work := r.workLocked(t)
	RunGit(t, work, nil, "fetch", "-q", "--prune", "--force", "origin",
		"+refs/heads/*:refs/remotes/origin/*")
	return work
}

// applyLocked writes the change into the scratch clone's working tree,
// commits it (signed when asked) and returns the commit hash.
func (r *Repo) applyLocked(t testing.TB, ch Change) string {
	t.Helper()
	work := r.work
	paths := make([]string, 0, len(ch.Write))
	for p := range ch.Write {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		full := filepath.Join(work, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatalf("gitserver: %v", err)
		}
		writeAt(t, full, []byte(ch.Write[p]), 0o644)
	}
	for p, size := range ch.Large {
		writeLarge(t, filepath.Join(work, filepath.FromSlash(p)), size)
	}
	for _, p := range ch.Delete {
		if err := os.RemoveAll(filepath.Join(work, filepath.FromSlash(p))); err != nil {
			t.Fatalf("gitserver: %v", err)
		}
	}
	RunGit(t, work, nil, "add", "-A")
	msg := ch.Message
	if msg == "" {
		msg = "test change"
	}
	if ch.Sign != nil {
		ch.Sign.commit(t, work, msg)
	} else {
		RunGit(t, work, nil, "commit", "-q", "--allow-empty", "-m", msg)
	}
	return RunGit(t, work, nil, "rev-parse", "HEAD")
}

// writeLarge writes size 'x' bytes to path, a mebibyte at a time.
func writeLarge(t testing.TB, path string, size int64) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatalf("gitserver: %v", err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatalf("gitserver: %v", err)
	}
	defer f.Close()
	chunk := bytes.Repeat([]byte("x"), 1<<20)
	for size > 0 {
		n := min(size, int64(len(chunk)))
		if _, err := f.Write(chunk[:n]); err != nil {
			t.Fatalf("gitserver: %v", err)
		}
		size -= n
	}
}
