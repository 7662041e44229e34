package source

import (
	"testing"
	"time"
)

// Tree computes the tree Commit records, for the same edits, and a
// different tree for different edits.
func TestTreeIsTheTreeCommitWouldRecord(t *testing.T) {
	srv := startServer(t)
	srv.CreateRepo(t, "app", baseFiles)
	s := followers(t, srv, "app")["file"]
	s.Branches = []string{"env/staging"}
	r := openRepo(t, s, Options{})
	staging := branchResult(t, mustPoll(t, r), "env/staging").Revision
	ctx := t.Context()
	req := CommitRequest{Branch: "env/staging", Parent: staging.Commit,
		Files:  map[string][]byte{"apps/web/deployment.yaml": []byte("kind: Deployment\nimage: web:3\n")},
		Delete: []string{"README.md"}, Author: promoter, Message: "change"}
	tree, err := r.Tree(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	commit, err := r.Commit(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	log, err := r.Log(ctx, LogRequest{Commit: commit, Max: 1, Since: staging.Time.Add(-time.Hour)})
	if err != nil || len(log) != 1 {
		t.Fatalf("log: %v %d", err, len(log))
	}
	if log[0].Tree != tree {
		t.Errorf("Tree = %s, the commit records %s", tree, log[0].Tree)
	}
	req.Files["apps/web/deployment.yaml"] = []byte("kind: Deployment\nimage: web:4\n")
	if other, err := r.Tree(ctx, req); err != nil || other == tree {
		t.Errorf("Tree of other content = %s, %v: want a different tree", other, err)
	}
	if same, err := r.Tree(ctx, CommitRequest{Parent: staging.Commit}); err != nil || same != staging.Tree {
		t.Errorf("Tree of no edits = %s, %v: want the parent's %s", same, err, staging.Tree)
	}
	if _, err := r.Tree(ctx, CommitRequest{Parent: staging.Commit, Delete: []string{"../x"}}); err == nil {
		t.Error("Tree accepted an invalid path")
	}
}
