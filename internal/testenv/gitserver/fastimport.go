package gitserver

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// LargeRepoOptions shapes a generated repository.
type LargeRepoOptions struct {
	// Files is the number of files in the tree (spread over folders of 100).
	Files int
	// Commits is the length of the history. The first commit adds every
	// file; each later commit changes one file.
	Commits int
	// FileSize is the approximate size of a file in bytes; 0 means 200.
	FileSize int
}

// CreateLargeRepo builds a bare repository with git fast-import, which
// writes thousands of commits in about a second where one `git commit` per
// change would take minutes. Every environment branch points to the last
// commit.
func (s *Server) CreateLargeRepo(t testing.TB, name string, opts LargeRepoOptions) *Repo {
	t.Helper()
	if opts.Files < 1 || opts.Commits < 1 {
		t.Fatalf("gitserver: CreateLargeRepo needs Files and Commits > 0")
	}
	if opts.FileSize <= 0 {
		opts.FileSize = 200
	}
	r := s.InitRepo(t, name)
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	start := time.Now().Add(-time.Duration(opts.Commits) * time.Minute).Unix()
	for c := 1; c <= opts.Commits; c++ {
		when := start + int64(c)*60
		msg := fmt.Sprintf("change %d", c)
		fmt.Fprintf(w, "commit refs/heads/%s\nmark :%d\n", EnvBranches[0], c)
		fmt.Fprintf(w, "author Baton Test <test@baton.invalid> %d +0000\n", when)
		fmt.Fprintf(w, "committer Baton Test <test@baton.invalid> %d +0000\n", when)
		fmt.Fprintf(w, "data %d\n%s\n", len(msg), msg)
		if c == 1 {
			for f := 0; f < opts.Files; f++ {
				writeInline(w, largeRepoPath(f), largeRepoContent(f, 0, opts.FileSize))
			}
			continue
		}
		fmt.Fprintf(w, "from :%d\n", c-1)
		f := (c - 2) % opts.Files
		writeInline(w, largeRepoPath(f), largeRepoContent(f, c, opts.FileSize))
	}
	for _, b := range EnvBranches[1:] {
		fmt.Fprintf(w, "reset refs/heads/%s\nfrom :%d\n\n", b, opts.Commits)
	}
	if err := w.Flush(); err != nil {
		t.Fatalf("gitserver: %v", err)
	}
	home := t.TempDir()
	if _, err := gitIn(r.Path, isolatedEnv(home), buf.Bytes(), "fast-import", "--quiet"); err != nil {
		t.Fatalf("gitserver: git fast-import: %v", err)
	}
	return r
}

// largeRepoPath is the path of file number i in a CreateLargeRepo tree.
func largeRepoPath(i int) string {
	return fmt.Sprintf("apps/group-%03d/file-%05d.yaml", i/100, i)
}

func largeRepoContent(file, version, size int) string {
	head := fmt.Sprintf("# file %d version %d\n", file, version)
	if size <= len(head) {
		return head
	}
	return head + strings.Repeat("k: v\n", (size-len(head))/5)
}

func writeInline(w *bufio.Writer, path, content string) {
	fmt.Fprintf(w, "M 100644 inline %s\ndata %d\n%s\n", path, len(content), content)
}

// LargeRepoPath is the path of file number i in a CreateLargeRepo tree, for
// tests and benchmarks that change or read a known file.
func LargeRepoPath(i int) string { return largeRepoPath(i) }
