package gitlab_test

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
	"github.com/baton-gitops/baton/promote/forge/gitlab"
)

// GitLab cannot run here (it is far too big to build and start in a
// test), so these tests run the client against a contract written from
// GitLab's REST API v4 documentation (merge requests, notes, commit
// statuses, pagination with X-Next-Page, errors as {"message": ...}): an
// httptest server expects the exact requests the client must send
// (method, encoded path, query, headers, JSON body) and answers with
// bodies in the documented format, kept in testdata/. A change in what
// the client sends fails here; a change on GitLab's side would not, which
// is the limit of a contract test.

type exchange struct {
	method, path string            // path as sent, encoded: /api/v4/projects/acme%2Fplatform%2Fdeploy/...
	query        map[string]string // expected query values (all must match)
	body         map[string]any    // expected JSON body, when set
	status       int
	file         string // testdata file for the answer, or
	raw          string // a literal answer
	header       map[string]string
}

type contract struct {
	t     *testing.T
	mu    sync.Mutex // guards next
	steps []exchange
	next  int
	srv   *httptest.Server
}

const token = "glpat-token1"

func newContract(t *testing.T, steps ...exchange) *contract {
	c := &contract{t: t, steps: steps}
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
	if r.Method != x.method || r.URL.EscapedPath() != x.path {
		t.Errorf("contract step %d: got %s %s, want %s %s", c.next, r.Method, r.URL.EscapedPath(), x.method, x.path)
	}
	for k, v := range x.query {
		if got := r.URL.Query().Get(k); got != v {
			t.Errorf("contract step %d: query %s=%q, want %q", c.next, k, got, v)
		}
	}
	if got := r.Header.Get("PRIVATE-TOKEN"); got != token {
		t.Errorf("contract step %d: PRIVATE-TOKEN %q", c.next, got)
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
		if len(got) != len(x.body) {
			t.Errorf("contract step %d: body %v has fields beyond %v", c.next, got, x.body)
		}
	}
	for k, v := range x.header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
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

func client(t *testing.T, c *contract) *gitlab.Client {
	gl, err := gitlab.New(gitlab.Options{URL: c.srv.URL, Project: "acme/platform/deploy", Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return gl
}

const (
	project = "/api/v4/projects/acme%2Fplatform%2Fdeploy"
	head    = "baton/promote-staging-to-prod"
	base    = "env/prod"
)

func TestListMergeRequests(t *testing.T) {
	c := newContract(t,
		exchange{method: "GET", path: project + "/merge_requests",
			query: map[string]string{"state": "opened", "source_branch": head, "target_branch": base, "per_page": "100", "page": "1"},
			raw:   "[" + fixture(t, "mr_open.json") + "]", header: map[string]string{"X-Next-Page": ""}},
		exchange{method: "GET", path: project + "/merge_requests",
			query: map[string]string{"state": "all", "source_branch": head, "target_branch": base, "order_by": "updated_at", "sort": "desc"},
			file:  "mr_list_all.json", header: map[string]string{"X-Next-Page": "2"}},
	)
	gl := client(t, c)
	open, err := gl.PullRequests(context.Background(), head, base, "open")
	if err != nil {
		t.Fatal(err)
	}
	want := promote.PullRequest{Number: 5, URL: "https://gitlab.example.com/acme/platform/deploy/-/merge_requests/5",
		Title: "promote staging@1a2b3c4 to prod", Body: "Promotes **staging@1a2b3c4** to **prod**.", Head: head, Base: base,
		HeadSHA: "6dcb09b5b57875f334f61aebed695e2e4193db5e", State: "open"}
	if len(open) != 1 || open[0] != want {
		t.Fatalf("open: got %+v, want [%+v]", open, want)
	}
	// Closed: one page only, merged and closed ones.
	closed, err := gl.PullRequests(context.Background(), head, base, "closed")
	if err != nil {
		t.Fatal(err)
	}
	if len(closed) != 2 {
		t.Fatalf("closed: %+v", closed)
	}
	if m := closed[0]; !m.Merged || m.MergedBy != "reviewer" || m.MergeCommit != "c0ffee0000000000000000000000000000000004" || m.State != "closed" {
		t.Errorf("merged: %+v", m)
	}
	if m := closed[1]; m.Merged || m.MergeCommit != "" || m.HeadSHA != "aaaa000000000000000000000000000000000003" {
		t.Errorf("closed unmerged: %+v", m)
	}
}

func TestCreateEditClose(t *testing.T) {
	c := newContract(t,
		exchange{method: "POST", path: project + "/merge_requests", status: 201, file: "mr_open.json",
			body: map[string]any{"source_branch": head, "target_branch": base, "title": "promote staging@1a2b3c4 to prod", "description": "b"}},
		exchange{method: "POST", path: project + "/merge_requests", status: 409, file: "conflict.json"},
		exchange{method: "PUT", path: project + "/merge_requests/5", file: "mr_open.json", body: map[string]any{"title": "t2", "description": "b2"}},
		exchange{method: "PUT", path: project + "/merge_requests/6", file: "mr_open.json", body: map[string]any{"state_event": "close"}},
	)
	gl := client(t, c)
	ctx := context.Background()
	pr, err := gl.CreatePullRequest(ctx, promote.NewPullRequest{Head: head, Base: base, Title: "promote staging@1a2b3c4 to prod", Body: "b"})
	if err != nil || pr.Number != 5 {
		t.Fatalf("create: %+v %v", pr, err)
	}
	if _, err := gl.CreatePullRequest(ctx, promote.NewPullRequest{Head: head, Base: base, Title: "t", Body: "b"}); !errors.Is(err, promote.ErrPullRequestExists) {
		t.Fatalf("duplicate create: %v, want ErrPullRequestExists", err)
	}
	if _, err := gl.EditPullRequest(ctx, 5, "t2", "b2"); err != nil {
		t.Fatal(err)
	}
	if err := gl.ClosePullRequest(ctx, 6); err != nil {
		t.Fatal(err)
	}
}

// Notes (comments), with the system notes GitLab adds left out, across
// pages; a note edited by id; open merge requests into a base, forks
// marked; commit statuses with GitLab's state names, a repeated state
// being no error.
func TestNotesAndStatuses(t *testing.T) {
	sha := "6dcb09b5b57875f334f61aebed695e2e4193db5e"
	c := newContract(t,
		exchange{method: "POST", path: project + "/merge_requests/5/notes", status: 201, file: "note.json", body: map[string]any{"body": "Promotion frozen"}},
		exchange{method: "GET", path: project + "/merge_requests/5/notes", query: map[string]string{"sort": "asc", "order_by": "created_at", "page": "1"},
			file: "notes_page1.json", header: map[string]string{"X-Next-Page": "2"}},
		exchange{method: "GET", path: project + "/merge_requests/5/notes", query: map[string]string{"page": "2"},
			file: "notes_page2.json", header: map[string]string{"X-Next-Page": ""}},
		exchange{method: "PUT", path: project + "/merge_requests/5/notes/302", file: "note.json", body: map[string]any{"body": "updated"}},
		exchange{method: "GET", path: project + "/merge_requests", query: map[string]string{"state": "opened", "target_branch": base, "page": "1"},
			file: "mr_list_open_page1.json", header: map[string]string{"X-Next-Page": "2"}},
		exchange{method: "GET", path: project + "/merge_requests", query: map[string]string{"state": "opened", "target_branch": base, "page": "2"},
			file: "mr_list_open_page2.json"},
		exchange{method: "POST", path: project + "/statuses/" + sha, status: 201, file: "status.json",
			body: map[string]any{"state": "failed", "name": "baton/preview/prod", "description": "render failed"}},
		exchange{method: "POST", path: project + "/statuses/" + sha, status: 400, file: "transition.json",
			body: map[string]any{"state": "pending", "name": "baton/prod", "description": "applied", "target_url": "https://baton.example/"}},
	)
	gl := client(t, c)
	ctx := context.Background()
	if id, err := gl.CreateComment(ctx, 5, "Promotion frozen"); err != nil || id != 302 {
		t.Fatalf("note %d %v, want 302", id, err)
	}
	notes, err := gl.PullRequestComments(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 2 || notes[0].ID != 302 || !strings.Contains(notes[0].Body, "baton:preview prod") || notes[1].ID != 303 {
		t.Fatalf("notes %+v: want 302 and 303, not the system note", notes)
	}
	if err := gl.EditComment(ctx, 5, 302, "updated"); err != nil {
		t.Fatal(err)
	}
	open, err := gl.OpenPullRequests(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 3 || open[0].Number != 5 || open[0].Fork || open[1].Number != 6 || !open[1].Fork || open[2].Number != 7 || open[2].Body != "" {
		t.Fatalf("open merge requests %+v", open)
	}
	if err := gl.SetCommitStatus(ctx, sha, promote.CommitStatus{Context: "baton/preview/prod", State: promote.StatusFailure, Description: "render failed"}); err != nil {
		t.Fatal(err)
	}
	if err := gl.SetCommitStatus(ctx, sha, promote.CommitStatus{Context: "baton/prod", State: promote.StatusPending, Description: "applied",
		TargetURL: "https://baton.example/"}); err != nil {
		t.Fatalf("a repeated state: %v, want no error", err)
	}
}

func TestErrorsNameTheCallNotTheToken(t *testing.T) {
	c := newContract(t, exchange{method: "PUT", path: project + "/merge_requests/5", status: 401, file: "unauthorized.json"})
	_, err := client(t, c).EditPullRequest(context.Background(), 5, "t", "b")
	if err == nil || !strings.Contains(err.Error(), "gitlab acme/platform/deploy: edit merge request !5") || !strings.Contains(err.Error(), "401") {
		t.Fatalf("error %v", err)
	}
	if strings.Contains(err.Error(), token) {
		t.Fatal("the token leaked into the error")
	}
}

func TestNewValidates(t *testing.T) {
	for name, opts := range map[string]gitlab.Options{
		"no project":   {Token: "t"},
		"bare project": {Project: "deploy", Token: "t"},
		"no token":     {Project: "acme/deploy"},
		"two tokens":   {Project: "acme/deploy", Token: "t", TokenFile: "f"},
		"bad url":      {URL: "gitlab.example.com", Project: "acme/deploy", Token: "t"},
	} {
		if _, err := gitlab.New(opts); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	gl, err := gitlab.New(gitlab.Options{Project: "acme/deploy", Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if got := gl.CompareURL(); got != "https://gitlab.com/acme/deploy/-/compare/{base}...{head}" {
		t.Errorf("compare URL %q", got)
	}
}

func fixture(t *testing.T, name string) string {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
