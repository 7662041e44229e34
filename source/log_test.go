package source

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/baton-gitops/baton/internal/testenv/gitserver"
)

func TestLogFetchesHistoryDownToSince(t *testing.T) {
	for _, via := range []string{"https", "ssh", "file"} {
		t.Run(via, func(t *testing.T) {
			srv := startServer(t)
			repo := srv.CreateRepo(t, "app", baseFiles)
			initial := repo.Head(t, "env/dev")
			var made []string
			for i := range 3 {
				made = append(made, repo.Commit(t, "env/dev", gitserver.Change{Write: map[string]string{"n": fmt.Sprint(i)}}))
			}
			r := openRepo(t, followers(t, srv, "app")[via], Options{})
			tip := branchResult(t, mustPoll(t, r), "env/dev").Revision

			// The store is shallow: the history comes from the remote.
			since := time.Now().Add(-time.Hour)
			log, err := r.Log(context.Background(), LogRequest{Commit: tip.Commit, Since: since})
			if err != nil {
				t.Fatal(err)
			}
			want := []string{made[2], made[1], made[0], initial}
			if len(log) != len(want) {
				t.Fatalf("log has %d commits, want %d", len(log), len(want))
			}
			for i, rev := range log {
				// Commits made within one second tie on time; order by
				// parent link rather than position.
				if !contains(want, rev.Commit) {
					t.Errorf("log[%d] = %s, not one of the branch's commits", i, rev.Commit)
				}
			}
			if log[0].Commit != tip.Commit {
				t.Errorf("log starts at %s, want the tip", log[0].Commit)
			}
			if b, err := log[len(log)-1].Snapshot.ReadFile("README.md"); err != nil || string(b) != "hello\n" {
				t.Errorf("snapshot of an old commit: %q %v", b, err)
			}

			limited, err := r.Log(context.Background(), LogRequest{Commit: tip.Commit, Since: since, Max: 2})
			if err != nil || len(limited) != 2 {
				t.Fatalf("Max 2: %d commits, %v", len(limited), err)
			}
			future, err := r.Log(context.Background(), LogRequest{Commit: tip.Commit, Since: time.Now().Add(time.Hour)})
			if err != nil || len(future) != 0 {
				t.Fatalf("since in the future: %d commits, %v", len(future), err)
			}
			if _, err := r.Log(context.Background(), LogRequest{Commit: tip.Commit}); err == nil {
				t.Fatal("a log without Since was accepted")
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
