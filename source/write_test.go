package source

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/baton-gitops/baton/internal/testenv/gitserver"
)

var promoter = Signature{Name: "Baton", Email: "baton@baton.invalid"}

func TestCommitAndPushWithALease(t *testing.T) {
	for _, via := range []string{"https", "ssh", "file"} {
		t.Run(via, func(t *testing.T) {
			srv := startServer(t)
			repo := srv.CreateRepo(t, "app", baseFiles)
			s := followers(t, srv, "app")[via]
			s.Branches = []string{"env/dev", "env/staging"}
			r := openRepo(t, s, Options{})
			repo.Commit(t, "env/dev", gitserver.Change{Write: map[string]string{
				"apps/api/kustomization.yaml": "resources: []\n", "apps/api/config.yaml": "debug: true\n"}})
			res := mustPoll(t, r)
			dev, staging := branchResult(t, res, "env/dev").Revision, branchResult(t, res, "env/staging").Revision
			apiTree, err := dev.Snapshot.TreeHash("apps/api")
			if err != nil {
				t.Fatal(err)
			}

			ctx := context.Background()
			when := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
			commit, err := r.Commit(ctx, CommitRequest{
				Branch:  "env/staging",
				Parent:  staging.Commit,
				Files:   map[string][]byte{"apps/web/deployment.yaml": []byte("kind: Deployment\nimage: web:2\n")},
				Trees:   map[string]string{"apps/api": apiTree},
				Delete:  []string{"README.md"},
				Author:  Signature{Name: "Ada", Email: "ada@baton.invalid", When: when},
				Message: "Promote env/dev to env/staging\n\nBaton-Promoted-From: env/dev@" + dev.Commit,
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Push(ctx, PushRequest{Branch: "env/staging", Commit: commit, ExpectedOld: staging.Commit}); err != nil {
				t.Fatalf("push: %v", err)
			}
			if head := repo.Head(t, "env/staging"); head != commit {
				t.Fatalf("env/staging = %s after push, want %s", head, commit)
			}
			// The real git agrees the repository is whole and the commit is
			// what was asked for.
			gitserver.RunGit(t, repo.Path, nil, "fsck", "--strict", "--no-dangling")
			files := gitserver.RunGit(t, repo.Path, nil, "ls-tree", "-r", "--name-only", commit)
			if files != "apps/api/config.yaml\napps/api/kustomization.yaml\napps/web/deployment.yaml\napps/web/kustomization.yaml" {
				t.Fatalf("pushed tree:\n%s", files)
			}
			if got := gitserver.RunGit(t, repo.Path, nil, "log", "-1", "--format=%an <%ae> %at %P", commit); got !=
				"Ada <ada@baton.invalid> "+strconv.FormatInt(when.Unix(), 10)+" "+staging.Commit {
				t.Errorf("commit header: %s", got)
			}

			// The next poll follows it without downloading anything.
			srv.ResetCounts()
			st := branchResult(t, mustPoll(t, r), "env/staging")
			if st.Revision.Commit != commit || st.Movement != FastForward {
				t.Fatalf("poll after push: %s %v", st.Revision.Commit, st.Movement)
			}
			if v, _ := st.Revision.Trailer("Baton-Promoted-From"); v != "env/dev@"+dev.Commit {
				t.Errorf("trailer %q", v)
			}
			if c := srv.Counts("app"); c.UploadPack != 0 {
				t.Errorf("poll after push fetched: %+v", c)
			}
		})
	}
}

func TestPushLosesTheLeaseWhenSomebodyMovedTheBranch(t *testing.T) {
	for _, via := range []string{"https", "ssh", "file"} {
		t.Run(via, func(t *testing.T) {
			srv := startServer(t)
			repo := srv.CreateRepo(t, "app", baseFiles)
			s := followers(t, srv, "app")[via]
			r := openRepo(t, s, Options{})
			base := branchResult(t, mustPoll(t, r), "env/dev").Revision.Commit

			theirs := repo.Commit(t, "env/dev", gitserver.Change{Write: map[string]string{"theirs": "1"}})
			ours, err := r.Commit(context.Background(), CommitRequest{Branch: "env/dev", Parent: base,
				Files: map[string][]byte{"ours": []byte("1")}, Author: promoter, Message: "ours"})
			if err != nil {
				t.Fatal(err)
			}
			err = r.Push(context.Background(), PushRequest{Branch: "env/dev", Commit: ours, ExpectedOld: base})
			e := requireKind(t, err, ErrLeaseLost)
			if e.Branch != "env/dev" || !strings.Contains(err.Error(), theirs) || !strings.Contains(err.Error(), base) {
				t.Errorf("lease error does not name the branch and both heads: %v", err)
			}
			if head := repo.Head(t, "env/dev"); head != theirs {
				t.Fatalf("lost lease moved the branch to %s", head)
			}

			// Rebuilt on the new head, the push goes through.
			mustPoll(t, r)
			again, err := r.Commit(context.Background(), CommitRequest{Branch: "env/dev", Parent: theirs,
				Files: map[string][]byte{"ours": []byte("1")}, Author: promoter, Message: "ours"})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Push(context.Background(), PushRequest{Branch: "env/dev", Commit: again, ExpectedOld: theirs}); err != nil {
				t.Fatalf("push on the new head: %v", err)
			}
		})
	}
}

func TestPushCreatesABranchOnlyIfAbsent(t *testing.T) {
	srv := startServer(t)
	repo := srv.CreateRepo(t, "app", baseFiles)
	r := openRepo(t, httpsSettings(t, srv, "app", "env/dev"), Options{})
	base := branchResult(t, mustPoll(t, r), "env/dev").Revision.Commit
	ctx := context.Background()
	c, err := r.Commit(ctx, CommitRequest{Branch: "promote/web", Parent: base,
		Files: map[string][]byte{"x": []byte("1")}, Author: promoter, Message: "new branch"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Push(ctx, PushRequest{Branch: "promote/web", Commit: c}); err != nil {
		t.Fatalf("create branch: %v", err)
	}
	if repo.Head(t, "promote/web") != c {
		t.Fatal("branch not created")
	}
	err = r.Push(ctx, PushRequest{Branch: "promote/web", Commit: base})
	requireKind(t, err, ErrLeaseLost)
}

func TestCommitRejectsBadRequests(t *testing.T) {
	srv := startServer(t)
	srv.CreateRepo(t, "app", baseFiles)
	r := openRepo(t, httpsSettings(t, srv, "app", "env/dev"), Options{})
	base := branchResult(t, mustPoll(t, r), "env/dev").Revision.Commit
	ok := CommitRequest{Branch: "env/dev", Parent: base, Author: promoter, Message: "m",
		Files: map[string][]byte{"a": []byte("1")}}
	cases := map[string]struct {
		edit func(*CommitRequest)
		want string
	}{
		"no message":        {func(c *CommitRequest) { c.Message = " " }, "message is required"},
		"no author":         {func(c *CommitRequest) { c.Author = Signature{} }, "author"},
		"absolute path":     {func(c *CommitRequest) { c.Files = map[string][]byte{"/etc/x": nil} }, `invalid path "/etc/x"`},
		"dot-dot path":      {func(c *CommitRequest) { c.Files = map[string][]byte{"a/../b": nil} }, "invalid path"},
		"written twice":     {func(c *CommitRequest) { c.Delete = []string{"a"} }, `"a" is changed twice`},
		"inside a new file": {func(c *CommitRequest) { c.Delete = []string{"a/b"} }, `inside "a"`},
		"unknown parent":    {func(c *CommitRequest) { c.Parent = strings.Repeat("ab", 20) }, "not in the local store"},
		"unknown tree": {func(c *CommitRequest) {
			c.Trees = map[string]string{"t": strings.Repeat("cd", 20)}
		}, "not in the local store"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			req := ok
			tc.edit(&req)
			_, err := r.Commit(context.Background(), req)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "commit "+r.URL()+"@env/dev") {
				t.Errorf("error does not name repo@branch: %v", err)
			}
		})
	}
}

// pendingRefs lists the store's refs/baton/pending/* references.
func pendingRefs(t *testing.T, r *Repository) []string {
	t.Helper()
	r.store.mu.Lock()
	defer r.store.mu.Unlock()
	refs, err := r.store.refsLocked()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for name := range refs {
		if strings.HasPrefix(name, pendingRefPrefix) {
			out = append(out, name)
		}
	}
	return out
}

// A push that fails for any reason (here the server refuses the
// credentials) leaves no pending reference behind: the caller rebuilds the
// commit at its next attempt, so one reference per failed evaluation would
// pile up (and keep its commit through every compaction).
func TestFailedPushLeavesNoPendingRef(t *testing.T) {
	srv := startServer(t)
	repo := srv.CreateRepo(t, "app", baseFiles)
	r := openRepo(t, httpsSettings(t, srv, "app", "env/dev"), Options{})
	base := branchResult(t, mustPoll(t, r), "env/dev").Revision.Commit
	ctx := context.Background()
	for i := range 3 {
		c, err := r.Commit(ctx, CommitRequest{Branch: "env/dev", Parent: base,
			Files: map[string][]byte{"x": []byte(strconv.Itoa(i))}, Author: promoter, Message: "attempt " + strconv.Itoa(i)})
		if err != nil {
			t.Fatal(err)
		}
		if got := pendingRefs(t, r); len(got) != 1 {
			t.Fatalf("after Commit: pending refs %v, want the one of %s", got, c)
		}
		srv.SetAuthFailure(true)
		err = r.Push(ctx, PushRequest{Branch: "env/dev", Commit: c, ExpectedOld: base})
		srv.SetAuthFailure(false)
		if err == nil {
			t.Fatal("push with refused credentials succeeded")
		}
		if got := pendingRefs(t, r); len(got) != 0 {
			t.Fatalf("attempt %d: failed push left pending refs %v", i, got)
		}
		r.store.mu.Lock()
		kept := r.store.hasLocked(plumbing.NewHash(c))
		r.store.mu.Unlock()
		if kept {
			t.Fatalf("attempt %d: the commit that failed to push is still in the store", i)
		}
	}
	if head := repo.Head(t, "env/dev"); head != base {
		t.Fatalf("env/dev moved to %s", head)
	}
	// A push of a commit that is not in the store fails early, and a
	// closed repository refuses; neither leaves anything either.
	err := r.Push(ctx, PushRequest{Branch: "env/dev", Commit: strings.Repeat("ab", 20), ExpectedOld: base})
	if err == nil || len(pendingRefs(t, r)) != 0 {
		t.Fatalf("push of an unknown commit: %v, pending %v", err, pendingRefs(t, r))
	}
}
