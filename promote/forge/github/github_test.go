package github_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/baton-gitops/baton/promote"
	"github.com/baton-gitops/baton/promote/forge/github"
)

// GitHub cannot run here, so these tests run the client against a
// contract: an httptest server that expects the exact requests the client
// must send (method, path, query, headers, JSON body) and answers with
// bodies in the format of GitHub's REST API documentation (version
// 2022-11-28), kept in testdata/. A change in what the client sends fails
// here; a change on GitHub's side would not, which is the limit of a
// contract test.

// exchange is one expected request and its answer.
type exchange struct {
	method, path string
	query        map[string]string // expected query values (all must match)
	body         map[string]any    // expected JSON body, when set
	status       int
	file         string // testdata file for the answer, or
	raw          string // a literal answer
	header       map[string]string
}

type contract struct {
	t     *testing.T
	mu    sync.Mutex // guards next and token
	steps []exchange
	next  int
	token string
	srv   *httptest.Server
}

func newContract(t *testing.T, steps ...exchange) *contract {
	c := &contract{t: t, steps: steps, token: "ghs_token1"}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(func() {
		c.srv.Close()
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.next != len(c.steps) {
			t.Errorf("contract: %d of %d exchanges happened", c.next, len(c.steps))
		}
	})
	return c
}

func (c *contract) serve(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.t
	if c.next >= len(c.steps) {
		t.Errorf("contract: unexpected %s %s", r.Method, r.URL)
		http.Error(w, "unexpected", 500)
		return
	}
	x := c.steps[c.next]
	c.next++
	if r.Method != x.method || r.URL.Path != x.path {
		t.Errorf("contract step %d: got %s %s, want %s %s", c.next, r.Method, r.URL.Path, x.method, x.path)
	}
	for k, v := range x.query {
		if got := r.URL.Query().Get(k); got != v {
			t.Errorf("contract step %d: query %s=%q, want %q", c.next, k, got, v)
		}
	}
	if got := r.Header.Get("Authorization"); got != "Bearer "+c.token {
		t.Errorf("contract step %d: authorization %q", c.next, got)
	}
	if got := r.Header.Get("Accept"); got != "application/vnd.github+json" {
		t.Errorf("contract step %d: accept %q", c.next, got)
	}
	if got := r.Header.Get("X-GitHub-Api-Version"); got != "2022-11-28" {
		t.Errorf("contract step %d: api version %q", c.next, got)
	}
	if x.body != nil {
		var got map[string]any
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &got); err != nil {
			t.Errorf("contract step %d: body %q: %v", c.next, b, err)
		}
		for k, v := range x.body {
			if got[k] != v {
				t.Errorf("contract step %d: body %s=%v, want %v", c.next, k, got[k], v)
			}
		}
	}
	for k, v := range x.header {
		w.Header().Set(k, strings.ReplaceAll(v, "{server}", c.srv.URL))
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if x.status == 0 {
		x.status = 200
	}
	w.WriteHeader(x.status)
	body := x.raw
	if x.file != "" {
		b, err := os.ReadFile(filepath.Join("testdata", x.file))
		if err != nil {
			t.Error(err)
		}
		body = string(b)
	}
	io.WriteString(w, body)
}

func fixture(t *testing.T, name string) string {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func client(t *testing.T, c *contract) *github.Client {
	gh, _ := clientWithTokenFile(t, c)
	return gh
}

// clientWithTokenFile also returns the token file, as a mounted Secret
// that can be rotated.
func clientWithTokenFile(t *testing.T, c *contract) (*github.Client, string) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("ghs_token1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	gh, err := github.New(github.Options{APIURL: c.srv.URL, Owner: "acme", Repo: "deploy", TokenFile: tokenFile})
	if err != nil {
		t.Fatal(err)
	}
	return gh, tokenFile
}

const head, base = "baton/promote-staging-to-prod", "env/prod"

func TestListOpenFollowsPages(t *testing.T) {
	c := newContract(t,
		exchange{method: "GET", path: "/repos/acme/deploy/pulls",
			query:  map[string]string{"state": "open", "head": "acme:" + head, "base": base, "per_page": "100"},
			raw:    "[" + fixture(t, "pull_open.json") + "]",
			header: map[string]string{"Link": `<{server}/repos/acme/deploy/pulls?page=2&state=open>; rel="next", <{server}/repos/acme/deploy/pulls?page=2>; rel="last"`}},
		exchange{method: "GET", path: "/repos/acme/deploy/pulls", query: map[string]string{"page": "2"}, raw: "[]"},
	)
	prs, err := client(t, c).PullRequests(context.Background(), head, base, "open")
	if err != nil {
		t.Fatal(err)
	}
	want := promote.PullRequest{Number: 12, URL: "https://github.com/acme/deploy/pull/12", Title: "promote staging@1a2b3c4 to prod",
		Body: "Promotes **staging@1a2b3c4** to **prod**.", Head: head, Base: base,
		HeadSHA: "6dcb09b5b57875f334f61aebed695e2e4193db5e", State: "open"}
	if len(prs) != 1 || prs[0] != want {
		t.Fatalf("got %+v, want [%+v]", prs, want)
	}
}

func TestLinkToAnotherHostNotFollowed(t *testing.T) {
	c := newContract(t,
		exchange{method: "GET", path: "/repos/acme/deploy/pulls", raw: "[]",
			header: map[string]string{"Link": `<https://evil.example/steal?page=2>; rel="next"`}},
	)
	if _, err := client(t, c).PullRequests(context.Background(), head, base, "open"); err != nil {
		t.Fatal(err)
	}
}

func TestListClosedLearnsMerger(t *testing.T) {
	c := newContract(t,
		exchange{method: "GET", path: "/repos/acme/deploy/pulls", query: map[string]string{"state": "closed", "sort": "updated", "direction": "desc"},
			raw: "[" + fixture(t, "pull_merged_list.json") + "," + fixture(t, "pull_closed_unmerged.json") + "]"},
		// The list leaves merged_by out; the client asks for the merged one.
		exchange{method: "GET", path: "/repos/acme/deploy/pulls/7", file: "pull_merged_full.json"},
	)
	prs, err := client(t, c).PullRequests(context.Background(), head, base, "closed")
	if err != nil {
		t.Fatal(err)
	}
	if len(prs) != 2 {
		t.Fatalf("%d pull requests, want 2", len(prs))
	}
	if !prs[0].Merged || prs[0].MergedBy != "octocat" || prs[0].MergeCommit != "c0ffee0000000000000000000000000000000001" {
		t.Errorf("merged: %+v", prs[0])
	}
	if prs[1].Merged || prs[1].MergeCommit != "" || prs[1].HeadSHA != "aaaa000000000000000000000000000000000002" {
		t.Errorf("closed unmerged: %+v", prs[1])
	}
}

func TestCreate(t *testing.T) {
	c := newContract(t,
		exchange{method: "POST", path: "/repos/acme/deploy/pulls", status: 201, file: "pull_open.json",
			body: map[string]any{"head": head, "base": base, "title": "promote staging@1a2b3c4 to prod", "body": "b"}},
		exchange{method: "POST", path: "/repos/acme/deploy/pulls", status: 422, file: "create_exists.json"},
	)
	gh := client(t, c)
	pr, err := gh.CreatePullRequest(context.Background(), promote.NewPullRequest{Head: head, Base: base, Title: "promote staging@1a2b3c4 to prod", Body: "b"})
	if err != nil || pr.Number != 12 {
		t.Fatalf("create: %+v %v", pr, err)
	}
	_, err = gh.CreatePullRequest(context.Background(), promote.NewPullRequest{Head: head, Base: base, Title: "t", Body: "b"})
	if !errors.Is(err, promote.ErrPullRequestExists) {
		t.Fatalf("duplicate create: %v, want ErrPullRequestExists", err)
	}
}

func TestEditCloseComment(t *testing.T) {
	c := newContract(t,
		exchange{method: "PATCH", path: "/repos/acme/deploy/pulls/12", file: "pull_open.json", body: map[string]any{"title": "t2", "body": "b2"}},
		exchange{method: "PATCH", path: "/repos/acme/deploy/pulls/13", raw: "{}", body: map[string]any{"state": "closed"}},
		exchange{method: "POST", path: "/repos/acme/deploy/issues/12/comments", status: 201, file: "comment.json", body: map[string]any{"body": "Promotion frozen"}},
		exchange{method: "GET", path: "/repos/acme/deploy/issues/12/comments", query: map[string]string{"per_page": "100"},
			raw: `[{"body":"one"}]`, header: map[string]string{"Link": `<{server}/repos/acme/deploy/issues/12/comments?page=2>; rel="next"`}},
		exchange{method: "GET", path: "/repos/acme/deploy/issues/12/comments", query: map[string]string{"page": "2"}, raw: `[{"body":"two"}]`},
	)
	gh, tokenFile := clientWithTokenFile(t, c)
	ctx := context.Background()
	if _, err := gh.EditPullRequest(ctx, 12, "t2", "b2"); err != nil {
		t.Fatal(err)
	}
	// A rotated Secret is used from the next call on, without a restart.
	if err := os.WriteFile(tokenFile, []byte("ghs_token2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.token = "ghs_token2"
	c.mu.Unlock()
	if err := gh.ClosePullRequest(ctx, 13); err != nil {
		t.Fatal(err)
	}
	if err := gh.Comment(ctx, 12, "Promotion frozen"); err != nil {
		t.Fatal(err)
	}
	comments, err := gh.Comments(ctx, 12)
	if err != nil || strings.Join(comments, ",") != "one,two" {
		t.Fatalf("comments %q %v", comments, err)
	}
}

func TestErrorsNameTheCall(t *testing.T) {
	c := newContract(t, exchange{method: "PATCH", path: "/repos/acme/deploy/pulls/12", status: 401, file: "bad_credentials.json"})
	_, err := client(t, c).EditPullRequest(context.Background(), 12, "t", "b")
	if err == nil || !strings.Contains(err.Error(), "github acme/deploy: edit pull request #12") || !strings.Contains(err.Error(), "401") ||
		!strings.Contains(err.Error(), "Bad credentials") {
		t.Fatalf("error %v", err)
	}
	if strings.Contains(err.Error(), "ghs_token1") {
		t.Fatal("the token leaked into the error")
	}
}

func TestNewValidates(t *testing.T) {
	for name, opts := range map[string]github.Options{
		"no repo":            {Owner: "acme", Token: "t"},
		"no token":           {Owner: "acme", Repo: "deploy"},
		"two tokens":         {Owner: "acme", Repo: "deploy", Token: "t", TokenFile: "f"},
		"bad api url":        {APIURL: "api.github.com", Owner: "acme", Repo: "deploy", Token: "t"},
		"unsupported scheme": {APIURL: "ftp://x", Owner: "acme", Repo: "deploy", Token: "t"},
	} {
		if _, err := github.New(opts); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	gh, err := github.New(github.Options{Owner: "acme", Repo: "deploy", Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if got := gh.CompareURL(); got != "https://github.com/acme/deploy/compare/{base}...{head}" {
		t.Errorf("compare URL %q", got)
	}
	ghe, _ := github.New(github.Options{APIURL: "https://ghe.example/api/v3", Owner: "acme", Repo: "deploy", Token: "t"})
	if got := ghe.CompareURL(); got != "https://ghe.example/acme/deploy/compare/{base}...{head}" {
		t.Errorf("enterprise compare URL %q", got)
	}
}

// The calls of previews and deploy statuses, as GitHub's documentation
// describes them: open pull requests into a base (paged; forks marked),
// issue comments with their ids edited by id, and commit statuses with a
// description cut to GitHub's 140 characters.
func TestPreviewCalls(t *testing.T) {
	long := strings.Repeat("é", 200)
	c := newContract(t,
		exchange{method: "GET", path: "/repos/acme/deploy/pulls",
			query:  map[string]string{"state": "open", "base": base, "sort": "created", "direction": "asc", "per_page": "100"},
			raw:    "[" + fixture(t, "pull_open.json") + "]",
			header: map[string]string{"Link": `<{server}/repos/acme/deploy/pulls?page=2&state=open&base=env%2Fprod>; rel="next"`}},
		exchange{method: "GET", path: "/repos/acme/deploy/pulls", query: map[string]string{"page": "2"}, raw: "[" + fixture(t, "pull_fork.json") + "]"},
		exchange{method: "GET", path: "/repos/acme/deploy/issues/12/comments", query: map[string]string{"per_page": "100"}, raw: "[" + fixture(t, "comment.json") + "]"},
		exchange{method: "PATCH", path: "/repos/acme/deploy/issues/comments/1", file: "comment.json", body: map[string]any{"body": "updated <!-- baton:preview prod -->"}},
		exchange{method: "POST", path: "/repos/acme/deploy/statuses/6dcb09b5b57875f334f61aebed695e2e4193db5e", status: 201, file: "status.json",
			body: map[string]any{"state": "failure", "context": "baton/preview/prod", "description": strings.Repeat("é", 139) + "…"}},
		exchange{method: "POST", path: "/repos/acme/deploy/statuses/6dcb09b5b57875f334f61aebed695e2e4193db5e", status: 201, file: "status.json",
			body: map[string]any{"state": "success", "context": "baton/prod", "description": "healthy in 12s", "target_url": "https://baton.example/"}},
	)
	gh := client(t, c)
	ctx := context.Background()
	prs, err := gh.OpenPullRequests(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	if len(prs) != 2 || prs[0].Number != 12 || prs[0].Fork || prs[1].Number != 14 || !prs[1].Fork || prs[1].HeadSHA != "bbbb000000000000000000000000000000000003" {
		t.Fatalf("open pull requests %+v", prs)
	}
	comments, err := gh.PullRequestComments(ctx, 12)
	if err != nil || len(comments) != 1 || comments[0].ID != 1 {
		t.Fatalf("comments %+v %v", comments, err)
	}
	if err := gh.EditComment(ctx, 12, comments[0].ID, "updated <!-- baton:preview prod -->"); err != nil {
		t.Fatal(err)
	}
	sha := "6dcb09b5b57875f334f61aebed695e2e4193db5e"
	if err := gh.SetCommitStatus(ctx, sha, promote.CommitStatus{Context: "baton/preview/prod", State: promote.StatusFailure, Description: long}); err != nil {
		t.Fatal(err)
	}
	if err := gh.SetCommitStatus(ctx, sha, promote.CommitStatus{Context: "baton/prod", State: promote.StatusSuccess,
		Description: "healthy in 12s", TargetURL: "https://baton.example/"}); err != nil {
		t.Fatal(err)
	}
}
