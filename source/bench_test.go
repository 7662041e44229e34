package source

import (
	"context"
	"fmt"
	"io/fs"
	"testing"

	"github.com/baton-gitops/baton/internal/testenv/gitserver"
)

// BenchmarkPollUnchanged is the steady state: every followed head is where
// it was, so a poll is one reference advertisement.
func BenchmarkPollUnchanged(b *testing.B) {
	srv := gitserver.Start(b, gitserver.Options{TLS: true})
	srv.CreateRepo(b, "app", baseFiles)
	for _, via := range []string{"https", "ssh", "file"} {
		b.Run(via, func(b *testing.B) {
			var s RepositorySettings
			switch via {
			case "https":
				s = httpsSettings(b, srv, "app")
			case "ssh":
				s = sshSettings(b, srv, "app")
			default:
				s = RepositorySettings{URL: srv.FileURL("app"), Branches: envBranches}
			}
			r := openRepo(b, s, Options{})
			mustPoll(b, r)
			srv.ResetCounts()
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := r.Poll(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if c := srv.Counts("app"); c.UploadPack != 0 {
				b.Fatalf("unchanged polls fetched: %+v", c)
			}
		})
	}
}

// BenchmarkFetchOneNewCommit measures the poll that follows one new commit
// (one changed file) in a repository of 5,000 files and 1,000 commits. The
// repository is built once with git fast-import; the commits are made with
// the git CLI outside the timer.
func BenchmarkFetchOneNewCommit(b *testing.B) {
	srv := gitserver.Start(b, gitserver.Options{TLS: true})
	repo := srv.CreateLargeRepo(b, "big", gitserver.LargeRepoOptions{Files: 5000, Commits: 1000})
	for _, via := range []string{"https", "ssh"} {
		b.Run(via, func(b *testing.B) {
			s := httpsSettings(b, srv, "big", "env/dev")
			if via == "ssh" {
				s = sshSettings(b, srv, "big", "env/dev")
			}
			// Compaction is measured on its own below.
			r := openRepo(b, s, Options{MaxPacks: 1 << 30})
			mustPoll(b, r)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				path := gitserver.LargeRepoPath(i % 5000)
				head := repo.Commit(b, "env/dev", gitserver.Change{Write: map[string]string{path: fmt.Sprintf("v: %d\n", i)}})
				b.StartTimer()
				res, err := r.Poll(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if dev := res.Branches[0]; dev.Revision.Commit != head || dev.Movement != FastForward {
					b.Fatalf("poll %d: %s %v", i, dev.Revision.Commit, dev.Movement)
				}
			}
		})
	}
	b.Run("compaction", func(b *testing.B) {
		r := openRepo(b, RepositorySettings{URL: srv.FileURL("big"), Branches: []string{"env/dev"}}, Options{})
		mustPoll(b, r)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			r.mu.Lock()
			err := r.compactLocked()
			r.mu.Unlock()
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSnapshotRead1500Files reads every file of a 1,500-file tree
// through fs.WalkDir and ReadFile, as the renderer does, from a fresh
// Snapshot each time (no decoded trees kept between iterations).
func BenchmarkSnapshotRead1500Files(b *testing.B) {
	srv := gitserver.Start(b, gitserver.Options{})
	srv.CreateLargeRepo(b, "overlay", gitserver.LargeRepoOptions{Files: 1500, Commits: 1, FileSize: 600})
	r := openRepo(b, RepositorySettings{URL: srv.FileURL("overlay"), Branches: []string{"env/dev"}}, Options{})
	rev := branchResult(b, mustPoll(b, r), "env/dev").Revision
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		snap := rev.rebase(r.store).Snapshot
		files, bytes := 0, 0
		err := fs.WalkDir(snap, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := snap.ReadFile(p)
			files++
			bytes += len(data)
			return err
		})
		if err != nil || files != 1500 {
			b.Fatalf("read %d files: %v", files, err)
		}
		b.SetBytes(int64(bytes))
	}
}
