package forge_test

import (
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/baton-gitops/baton/internal/testenv/forge"
)

var gitea *forge.Forge

func TestMain(m *testing.M) { os.Exit(forge.Main(m, &gitea)) }

// git runs a real git command in dir and returns its trimmed output.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Dev", "GIT_AUTHOR_EMAIL=dev@example.invalid",
		"GIT_COMMITTER_NAME=Dev", "GIT_COMMITTER_EMAIL=dev@example.invalid", "GIT_TERMINAL_PROMPT=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", args[0], err, out)
	}
	return strings.TrimSpace(string(out))
}

func commitFile(t *testing.T, dir, name, content, msg string) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, dir, "add", name)
	git(t, dir, "commit", "-q", "-m", msg)
	return git(t, dir, "rev-parse", "HEAD")
}

// The whole pull-request flow the promotion tests rely on, against the real
// Gitea: push, wait for the push to be processed, open, wait until
// mergeable, merge, and see the base branch move.
func TestPullRequestFlow(t *testing.T) {
	ctx := t.Context()
	name := gitea.RepoName("flow")
	cloneURL, err := gitea.CreateRepo(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if want := gitea.CloneURL(name); cloneURL != want {
		t.Errorf("clone URL %q, want %q", cloneURL, want)
	}
	dir := t.TempDir()
	git(t, dir, "init", "-q", "-b", "main")
	base := commitFile(t, dir, "a.txt", "one\n", "first")
	git(t, dir, "push", "-q", gitea.AuthenticatedURL(name), "main")
	if err := gitea.WaitBranch(ctx, name, "main", base); err != nil {
		t.Fatal(err)
	}
	git(t, dir, "checkout", "-q", "-b", "feature")
	head := commitFile(t, dir, "a.txt", "two\n", "second")
	git(t, dir, "push", "-q", gitea.AuthenticatedURL(name), "feature")
	if err := gitea.WaitBranch(ctx, name, "feature", head); err != nil {
		t.Fatal(err)
	}

	var pr struct {
		Number    int  `json:"number"`
		Mergeable bool `json:"mergeable"`
		Merged    bool `json:"merged"`
	}
	repoPath := "/repos/" + gitea.User() + "/" + name
	if err := gitea.API(ctx, http.MethodPost, repoPath+"/pulls",
		map[string]string{"head": "feature", "base": "main", "title": "second"}, &pr); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !pr.Mergeable {
		if time.Now().After(deadline) {
			t.Fatal("pull request never became mergeable")
		}
		if err := gitea.API(ctx, http.MethodGet, repoPath+"/pulls/"+strconv.Itoa(pr.Number), nil, &pr); err != nil {
			t.Fatal(err)
		}
	}
	if err := gitea.API(ctx, http.MethodPost, repoPath+"/pulls/"+strconv.Itoa(pr.Number)+"/merge",
		map[string]string{"Do": "merge"}, nil); err != nil {
		t.Fatal(err)
	}
	git(t, dir, "fetch", "-q", gitea.AuthenticatedURL(name), "main")
	merged := git(t, dir, "rev-parse", "FETCH_HEAD")
	if merged == base {
		t.Fatal("main did not move after the merge")
	}
	if parents := git(t, dir, "log", "-1", "--format=%P", merged); !strings.Contains(parents, head) {
		t.Errorf("merge commit parents %q do not include the feature head %s", parents, head)
	}

	var apiErr *forge.APIError
	err = gitea.API(ctx, http.MethodGet, repoPath+"/pulls/999", nil, nil)
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound {
		t.Errorf("missing pull request: got %v, want a 404 APIError", err)
	}
}

// A token-less push is refused, so tests can rely on auth being checked.
func TestPushNeedsToken(t *testing.T) {
	ctx := t.Context()
	name := gitea.RepoName("auth")
	if _, err := gitea.CreateRepo(ctx, name); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	git(t, dir, "init", "-q", "-b", "main")
	commitFile(t, dir, "a.txt", "one\n", "first")
	cmd := exec.Command("git", "push", "-q", gitea.CloneURL(name), "main")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("anonymous push accepted:\n%s", out)
	}
}

// Stop ends the process it started (and only that group) and frees the
// port; a second Stop is harmless.
func TestStartStop(t *testing.T) {
	f := forge.StartT(t)
	if _, err := os.Stat(f.Dir()); err != nil {
		t.Fatalf("instance folder: %v", err)
	}
	resp, err := http.Get(f.APIURL() + "/version")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	f.Stop()
	f.Stop()
	if _, err := http.Get(f.APIURL() + "/version"); err == nil {
		t.Error("forge still answers after Stop")
	}
	if _, err := os.Stat(f.Dir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("folder %s not removed after a passing Stop: %v", f.Dir(), err)
	}
}
