package source

import (
	"context"
	"fmt"
	"testing"

	"github.com/baton-gitops/baton/internal/testenv/gitserver"
)

// followers returns a repository following env/dev for each way of reaching
// the server, so that history handling is checked over the wire and on disk.
func followers(t *testing.T, srv *gitserver.Server, name string) map[string]RepositorySettings {
	return map[string]RepositorySettings{
		"https": httpsSettings(t, srv, name, "env/dev"),
		"ssh":   sshSettings(t, srv, name, "env/dev"),
		"file":  {URL: srv.FileURL(name), Branches: []string{"env/dev"}},
	}
}

func TestForcePushIsFollowedAndRecorded(t *testing.T) {
	for _, via := range []string{"https", "ssh", "file"} {
		t.Run(via, func(t *testing.T) {
			srv := startServer(t)
			repo := srv.CreateRepo(t, "app", baseFiles)
			base := repo.Head(t, "env/dev")
			r := openRepo(t, followers(t, srv, "app")[via], Options{})
			old := repo.Commit(t, "env/dev", gitserver.Change{Write: map[string]string{"a": "bad"}})
			mustPoll(t, r)

			// Replace the last commit (git commit --amend && git push -f).
			rewritten := repo.ForcePush(t, "env/dev", base, gitserver.Change{Write: map[string]string{"a": "good"}})
			dev := branchResult(t, mustPoll(t, r), "env/dev")
			if dev.Revision.Commit != rewritten || !dev.Changed {
				t.Fatalf("rewritten head not followed: %+v", dev)
			}
			if dev.Movement != Rewritten || dev.ForcePush == nil {
				t.Fatalf("movement %v, force-push %+v: want a recorded rewrite", dev.Movement, dev.ForcePush)
			}
			if dev.ForcePush.Old != old || dev.ForcePush.New != rewritten || dev.ForcePush.Branch != "env/dev" {
				t.Errorf("force-push record %+v", dev.ForcePush)
			}
			if b, _ := dev.Revision.Snapshot.ReadFile("a"); string(b) != "good" {
				t.Errorf("content %q", b)
			}
		})
	}
}

func TestSeveralCommitsBetweenPollsAreAFastForward(t *testing.T) {
	for _, via := range []string{"https", "ssh", "file"} {
		t.Run(via, func(t *testing.T) {
			srv := startServer(t)
			repo := srv.CreateRepo(t, "app", baseFiles)
			r := openRepo(t, followers(t, srv, "app")[via], Options{})
			mustPoll(t, r)
			var head string
			for i := range 4 {
				head = repo.Commit(t, "env/dev", gitserver.Change{Write: map[string]string{"n": fmt.Sprint(i)}})
			}
			dev := branchResult(t, mustPoll(t, r), "env/dev")
			if dev.Revision.Commit != head || dev.Movement != FastForward || dev.ForcePush != nil {
				t.Fatalf("movement %v force-push %+v: want a fast-forward to %s", dev.Movement, dev.ForcePush, head)
			}
		})
	}
}

func TestRewriteOntoUnrelatedOrOlderHistory(t *testing.T) {
	srv := startServer(t)
	repo := srv.CreateRepo(t, "app", baseFiles)
	first := repo.Head(t, "env/dev")
	r := openRepo(t, httpsSettings(t, srv, "app", "env/dev"), Options{})
	repo.Commit(t, "env/dev", gitserver.Change{Write: map[string]string{"a": "1"}})
	mustPoll(t, r)

	// Back to an older commit the store still has: no fetch needed.
	repo.ResetBranch(t, "env/dev", first)
	dev := branchResult(t, mustPoll(t, r), "env/dev")
	if dev.Revision.Commit != first || dev.Movement != Rewritten || dev.ForcePush == nil {
		t.Fatalf("reset: commit %s movement %v", dev.Revision.Commit, dev.Movement)
	}

	// A new root commit: unrelated history.
	orphan := repo.ForcePush(t, "env/dev", "", gitserver.Change{Write: map[string]string{"only": "x"}})
	dev = branchResult(t, mustPoll(t, r), "env/dev")
	if dev.Revision.Commit != orphan || dev.Movement != Rewritten {
		t.Fatalf("orphan: commit %s movement %v", dev.Revision.Commit, dev.Movement)
	}
	if entries, _ := dev.Revision.Snapshot.ReadDir("."); len(entries) != 1 {
		t.Fatalf("orphan tree has %d entries", len(entries))
	}
}

func TestDeletedBranchKeepsTheLastGoodRevision(t *testing.T) {
	srv := startServer(t)
	repo := srv.CreateRepo(t, "app", baseFiles)
	r := openRepo(t, httpsSettings(t, srv, "app"), Options{})
	good := branchResult(t, mustPoll(t, r), "env/staging").Revision

	repo.DeleteBranch(t, "env/staging")
	res, err := r.Poll(context.Background())
	if err != nil {
		t.Fatalf("a missing branch failed the whole poll: %v", err)
	}
	staging := branchResult(t, res, "env/staging")
	e := requireKind(t, staging.Err, ErrBranchMissing)
	if e.Branch != "env/staging" {
		t.Errorf("error names branch %q", e.Branch)
	}
	if staging.Revision != good || staging.Changed {
		t.Fatalf("deleted branch lost its revision: %+v", staging)
	}
	if b, err := staging.Revision.Snapshot.ReadFile("README.md"); err != nil || string(b) != "hello\n" {
		t.Fatalf("last good snapshot unreadable: %q %v", b, err)
	}
	if dev := branchResult(t, res, "env/dev"); dev.Err != nil {
		t.Errorf("env/dev affected: %v", dev.Err)
	}
	if r.Revision("env/staging") != good {
		t.Error("Revision() lost the last good revision")
	}

	// The branch comes back: followed again.
	back := repo.Commit(t, "env/staging", gitserver.Change{Write: map[string]string{"z": "1"}})
	staging = branchResult(t, mustPoll(t, r), "env/staging")
	if staging.Err != nil || staging.Revision.Commit != back {
		t.Fatalf("recreated branch: %+v", staging)
	}
}

func TestRestartReusesTheCache(t *testing.T) {
	srv := startServer(t)
	repo := srv.CreateRepo(t, "app", baseFiles)
	s := httpsSettings(t, srv, "app")
	cache := t.TempDir()
	r1 := openRepo(t, s, Options{CacheDir: cache})
	held := branchResult(t, mustPoll(t, r1), "env/dev").Revision
	r1.Close()
	if b, err := held.Snapshot.ReadFile("README.md"); err != nil || string(b) != "hello\n" {
		t.Fatalf("snapshot after Close: %q %v", b, err)
	}

	r2 := openRepo(t, s, Options{CacheDir: cache})
	if rev := r2.Revision("env/dev"); rev == nil || rev.Commit != repo.Head(t, "env/dev") {
		t.Fatalf("restart lost the revision: %+v", rev)
	}
	srv.ResetCounts()
	res := mustPoll(t, r2)
	if c := srv.Counts("app"); c.UploadPack != 0 {
		t.Errorf("first poll after a restart fetched again: %+v", c)
	}
	if dev := branchResult(t, res, "env/dev"); !dev.Changed || dev.Revision == nil {
		t.Errorf("first poll after restart should report the revision as new: %+v", dev)
	}
}
