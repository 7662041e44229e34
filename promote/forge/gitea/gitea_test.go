package gitea_test

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/baton-gitops/baton/internal/testenv/forge"
	"github.com/baton-gitops/baton/promote"
	"github.com/baton-gitops/baton/promote/forge/gitea"
)

// server is a real Gitea for the package (internal/testenv/forge).
var server *forge.Forge

func TestMain(m *testing.M) { os.Exit(forge.Main(m, &server)) }

// repo creates a repository with a base branch and a feature branch one
// commit ahead, and returns a client for it and a function that pushes
// another feature branch without waiting for Gitea to register it.
func repo(t *testing.T, name string) (*gitea.Client, func(branch string) string) {
	t.Helper()
	if _, err := server.CreateRepo(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=T", "GIT_AUTHOR_EMAIL=t@example.invalid",
			"GIT_COMMITTER_NAME=T", "GIT_COMMITTER_EMAIL=t@example.invalid", "GIT_TERMINAL_PROMPT=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v\n%s", args[0], err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q", "-b", "env/prod")
	os.WriteFile(filepath.Join(dir, "a.yaml"), []byte("a: 1\n"), 0o644)
	git("add", "-A")
	git("commit", "-q", "-m", "base")
	git("push", "-q", server.AuthenticatedURL(name), "env/prod")
	if err := server.WaitBranch(t.Context(), name, "env/prod", ""); err != nil {
		t.Fatal(err)
	}
	n := 0
	push := func(branch string) string {
		n++
		git("checkout", "-q", "-B", branch, "env/prod")
		os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(fmt.Sprintf("a: %d\n", n+1)), 0o644)
		git("commit", "-q", "-am", "change "+branch)
		git("push", "-q", "-f", server.AuthenticatedURL(name), branch)
		return git("rev-parse", "HEAD")
	}
	c, err := gitea.New(gitea.Options{URL: server.URL(), Owner: server.User(), Repo: name, Token: server.Token()})
	if err != nil {
		t.Fatal(err)
	}
	return c, push
}

func TestPullRequestLifecycle(t *testing.T) {
	ctx := t.Context()
	name := server.RepoName("lifecycle")
	c, push := repo(t, name)
	// Opened right after the push, before Gitea has registered the branch:
	// the client waits for it rather than failing with 404.
	sha := push("baton/promote-staging-to-prod")
	pr, err := c.CreatePullRequest(ctx, promote.NewPullRequest{Head: "baton/promote-staging-to-prod", Base: "env/prod", Title: "promote", Body: "body one"})
	if err != nil {
		t.Fatal(err)
	}
	if pr.Number == 0 || pr.State != "open" || pr.Head != "baton/promote-staging-to-prod" || pr.Base != "env/prod" ||
		!strings.HasPrefix(pr.URL, server.URL()) {
		t.Fatalf("created %+v", pr)
	}
	_, err = c.CreatePullRequest(ctx, promote.NewPullRequest{Head: "baton/promote-staging-to-prod", Base: "env/prod", Title: "again"})
	if !errors.Is(err, promote.ErrPullRequestExists) {
		t.Fatalf("duplicate: %v, want ErrPullRequestExists", err)
	}
	open, err := c.PullRequests(ctx, "baton/promote-staging-to-prod", "env/prod", "open")
	if err != nil || len(open) != 1 || open[0].Number != pr.Number || open[0].HeadSHA != sha || open[0].Body != "body one" {
		t.Fatalf("open list %+v %v", open, err)
	}
	if other, err := c.PullRequests(ctx, "baton/promote-dev-to-staging", "env/prod", "open"); err != nil || len(other) != 0 {
		t.Fatalf("another head listed %+v %v", other, err)
	}
	edited, err := c.EditPullRequest(ctx, pr.Number, "promote v2", "body two")
	if err != nil || edited.Title != "promote v2" || edited.Body != "body two" {
		t.Fatalf("edit %+v %v", edited, err)
	}
	if err := c.Comment(ctx, pr.Number, "first"); err != nil {
		t.Fatal(err)
	}
	if err := c.Comment(ctx, pr.Number, "second <!-- marker -->"); err != nil {
		t.Fatal(err)
	}
	comments, err := c.Comments(ctx, pr.Number)
	if err != nil || strings.Join(comments, "|") != "first|second <!-- marker -->" {
		t.Fatalf("comments %q %v", comments, err)
	}

	// Merge through the API, as a person would; the closed list then says
	// merged, by whom, and the merge commit.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var p struct {
			Mergeable bool `json:"mergeable"`
		}
		if err := server.API(ctx, http.MethodGet, fmt.Sprintf("/repos/%s/%s/pulls/%d", server.User(), name, pr.Number), nil, &p); err != nil {
			t.Fatal(err)
		}
		if p.Mergeable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("never mergeable")
		}
		select { // poll the condition again shortly
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := server.API(ctx, http.MethodPost, fmt.Sprintf("/repos/%s/%s/pulls/%d/merge", server.User(), name, pr.Number),
		map[string]string{"Do": "merge"}, nil); err != nil {
		t.Fatal(err)
	}
	closed, err := c.PullRequests(ctx, "baton/promote-staging-to-prod", "env/prod", "closed")
	if err != nil || len(closed) != 1 {
		t.Fatalf("closed list %+v %v", closed, err)
	}
	if m := closed[0]; !m.Merged || m.MergedBy != server.User() || len(m.MergeCommit) != 40 || m.State != "closed" {
		t.Errorf("merged pull request %+v", m)
	}
}

func TestCloseWithoutMerge(t *testing.T) {
	ctx := t.Context()
	c, push := repo(t, server.RepoName("close"))
	push("baton/revert-staging-to-prod")
	pr, err := c.CreatePullRequest(ctx, promote.NewPullRequest{Head: "baton/revert-staging-to-prod", Base: "env/prod", Title: "revert"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ClosePullRequest(ctx, pr.Number); err != nil {
		t.Fatal(err)
	}
	open, _ := c.PullRequests(ctx, "baton/revert-staging-to-prod", "env/prod", "open")
	closed, err := c.PullRequests(ctx, "baton/revert-staging-to-prod", "env/prod", "closed")
	if err != nil || len(open) != 0 || len(closed) != 1 || closed[0].Merged {
		t.Fatalf("open %+v closed %+v %v", open, closed, err)
	}
	// Closed, a new one can be opened for the same branches.
	if _, err := c.CreatePullRequest(ctx, promote.NewPullRequest{Head: "baton/revert-staging-to-prod", Base: "env/prod", Title: "revert again"}); err != nil {
		t.Fatal(err)
	}
}

func TestErrors(t *testing.T) {
	ctx := t.Context()
	name := server.RepoName("errors")
	c, _ := repo(t, name)
	_, err := c.EditPullRequest(ctx, 999, "t", "b")
	if err == nil || !strings.Contains(err.Error(), "edit pull request #999") || !strings.Contains(err.Error(), "404") {
		t.Errorf("missing pull request: %v", err)
	}
	bad, _ := gitea.New(gitea.Options{URL: server.URL(), Owner: server.User(), Repo: name, Token: "wrong-token"})
	_, err = bad.PullRequests(ctx, "x", "env/prod", "open")
	if err == nil || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "wrong-token") {
		t.Errorf("bad token: %v", err)
	}
	// A head branch that never appears fails after the wait, naming it.
	quick, _ := gitea.New(gitea.Options{URL: server.URL(), Owner: server.User(), Repo: name, Token: server.Token(), CreateWait: time.Second})
	_, err = quick.CreatePullRequest(ctx, promote.NewPullRequest{Head: "no-such-branch", Base: "env/prod", Title: "t"})
	if err == nil || !strings.Contains(err.Error(), "no-such-branch") {
		t.Errorf("missing head: %v", err)
	}
	for name, opts := range map[string]gitea.Options{
		"no url":     {Owner: "o", Repo: "r", Token: "t"},
		"no owner":   {URL: "http://x", Repo: "r", Token: "t"},
		"two tokens": {URL: "http://x", Owner: "o", Repo: "r", Token: "t", TokenFile: "f"},
	} {
		if _, err := gitea.New(opts); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// The calls previews and deploy statuses make: open pull requests into a
// base from any branch, comments with ids edited in place, and commit
// statuses that the forge then reports for the commit.
func TestPreviewCalls(t *testing.T) {
	ctx := t.Context()
	name := server.RepoName("preview")
	c, push := repo(t, name)
	sha := push("feature-a")
	if err := server.WaitBranch(ctx, name, "feature-a", sha); err != nil {
		t.Fatal(err)
	}
	pr, err := c.CreatePullRequest(ctx, promote.NewPullRequest{Head: "feature-a", Base: "env/prod", Title: "a", Body: "b"})
	if err != nil {
		t.Fatal(err)
	}
	open, err := c.OpenPullRequests(ctx, "env/prod")
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 || open[0].Number != pr.Number || open[0].HeadSHA != sha || open[0].Fork || open[0].Head != "feature-a" {
		t.Fatalf("open pull requests %+v", open)
	}
	if other, err := c.OpenPullRequests(ctx, "env/dev"); err != nil || len(other) != 0 {
		t.Fatalf("open into env/dev: %+v %v", other, err)
	}

	id, err := c.CreateComment(ctx, pr.Number, "first <!-- marker -->")
	if err != nil {
		t.Fatal(err)
	}
	comments, err := c.PullRequestComments(ctx, pr.Number)
	if err != nil || len(comments) != 1 || comments[0].ID != id {
		t.Fatalf("comments %+v %v, want one with id %d", comments, err, id)
	}
	if err := c.EditComment(ctx, pr.Number, comments[0].ID, "second <!-- marker -->"); err != nil {
		t.Fatal(err)
	}
	if comments, err = c.PullRequestComments(ctx, pr.Number); err != nil || len(comments) != 1 || comments[0].Body != "second <!-- marker -->" {
		t.Fatalf("comments after the edit %+v %v", comments, err)
	}

	long := strings.Repeat("x", 300)
	for _, st := range []promote.CommitStatus{
		{Context: "baton/preview/prod", State: promote.StatusPending, Description: "rendering"},
		{Context: "baton/preview/prod", State: promote.StatusFailure, Description: long},
		{Context: "baton/prod", State: promote.StatusSuccess, Description: "healthy in 3s", TargetURL: "https://baton.example/status"},
	} {
		if err := c.SetCommitStatus(ctx, sha, st); err != nil {
			t.Fatal(err)
		}
	}
	// The combined status holds the latest status of each context.
	var combined struct {
		Statuses []struct {
			Context     string `json:"context"`
			Status      string `json:"status"`
			Description string `json:"description"`
			TargetURL   string `json:"target_url"`
		} `json:"statuses"`
	}
	if err := server.API(ctx, http.MethodGet, "/repos/"+server.User()+"/"+name+"/commits/"+sha+"/status", nil, &combined); err != nil {
		t.Fatal(err)
	}
	latest := map[string]string{}
	for _, s := range combined.Statuses {
		latest[s.Context] = s.Status + " " + s.Description + " " + s.TargetURL
	}
	if got := latest["baton/preview/prod"]; got != "failure "+strings.Repeat("x", 139)+"… " {
		t.Errorf("preview status %q", got)
	}
	if got := latest["baton/prod"]; got != "success healthy in 3s https://baton.example/status" {
		t.Errorf("deploy status %q", got)
	}
}
