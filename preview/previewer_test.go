package preview

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baton-gitops/baton/reconciler"
	"github.com/baton-gitops/baton/source"
)

// The scheduling (debounce, cancellation of stale runs, one comment per
// pull request) is tested here against an in-memory forge and git, whose
// timing the test controls; the real Gitea, git and control plane run
// the same Previewer in internal/agent's TestPullRequestCockpit.

type memForge struct {
	mu       sync.Mutex // guards everything below
	prs      []PullRequest
	comments map[int][]Comment
	statuses map[string][]Status
	nextID   int64
}

func newMemForge() *memForge {
	return &memForge{comments: map[int][]Comment{}, statuses: map[string][]Status{}}
}

func (f *memForge) OpenPullRequests(_ context.Context, base string) ([]PullRequest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]PullRequest{}, f.prs...), nil
}

func (f *memForge) Comments(_ context.Context, n int) ([]Comment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Comment{}, f.comments[n]...), nil
}

func (f *memForge) CreateComment(_ context.Context, n int, body string) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	f.comments[n] = append(f.comments[n], Comment{ID: f.nextID, Body: body})
	return f.nextID, nil
}

func (f *memForge) EditComment(_ context.Context, n int, id int64, body string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.comments[n] {
		if f.comments[n][i].ID == id {
			f.comments[n][i].Body = body
			return nil
		}
	}
	return fmt.Errorf("no comment %d", id)
}

func (f *memForge) SetStatus(_ context.Context, sha string, st Status) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statuses[sha] = append(f.statuses[sha], st)
	return nil
}

func (f *memForge) setHead(number int, sha string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.prs {
		if f.prs[i].Number == number {
			f.prs[i].HeadSHA = sha
			return
		}
	}
	f.prs = append(f.prs, PullRequest{Number: number, Head: fmt.Sprintf("branch-%d", number), HeadSHA: sha})
}

func (f *memForge) lastStatus(sha string) Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.statuses[sha]
	if len(l) == 0 {
		return Status{}
	}
	return l[len(l)-1]
}

// memGit answers Head with the forge's head of the branch, and counts
// what was forgotten.
type memGit struct {
	f         *memForge
	mu        sync.Mutex // guards forgotten
	forgotten []string
}

func (g *memGit) Head(_ context.Context, branch string) (*source.Revision, error) {
	g.f.mu.Lock()
	defer g.f.mu.Unlock()
	for _, pr := range g.f.prs {
		if pr.Head == branch {
			return &source.Revision{Branch: branch, Commit: pr.HeadSHA}, nil
		}
	}
	return nil, fmt.Errorf("no branch %s", branch)
}

func (g *memGit) Forget(branch string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.forgotten = append(g.forgotten, branch)
}

// dryRuns records each dry run and holds it until released.
type dryRuns struct {
	mu        sync.Mutex // guards started, cancelled
	started   []string
	cancelled []string
	hold      chan struct{} // nil: no holding
}

func (d *dryRuns) run(ctx context.Context, env string, rev *source.Revision) (reconciler.Result, error) {
	d.mu.Lock()
	d.started = append(d.started, rev.Commit)
	hold := d.hold
	d.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			d.mu.Lock()
			d.cancelled = append(d.cancelled, rev.Commit)
			d.mu.Unlock()
			return reconciler.Result{}, ctx.Err()
		}
	}
	return reconciler.Result{Changes: []reconciler.Change{{Ref: reconciler.ObjectRef{Kind: "ConfigMap", Namespace: "ns", Name: "c"},
		Action: reconciler.ActionConfigured, Diff: "--- a\n+++ b\n@@ -1 +1 @@\n-x: 1\n+x: " + rev.Commit + "\n"}}}, nil
}

func (d *dryRuns) count() (int, []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.started), append([]string{}, d.cancelled...)
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runs counts the finished runs (OnRun).
type runs struct {
	mu   sync.Mutex // guards list
	list []RunRecord
}

func (r *runs) add(rec RunRecord) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, rec)
}

func (r *runs) done() []RunRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]RunRecord{}, r.list...)
}

func startPreviewer(t *testing.T, f *memForge, g *memGit, d *dryRuns, r *runs) *Previewer {
	t.Helper()
	p, err := New(Options{Environments: []Environment{{Name: "staging", Branch: "env/staging", Path: "overlays/staging"}},
		Forge: f, Heads: g, DryRun: d.run, Interval: time.Hour, Debounce: 50 * time.Millisecond, OnRun: r.add})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return p
}

func refresh(p *Previewer) {
	p.PullRequestChanged(source.PullRequestEvent{Number: 1, Base: "env/staging", URLs: []string{"x"}})
}

// A burst of changes makes one run; a head that moves while a run is in
// flight cancels it, and the new head's run writes the one comment.
func TestPreviewerDebouncesAndCancelsStaleRuns(t *testing.T) {
	f, d := newMemForge(), &dryRuns{}
	g := &memGit{f: f}
	f.setHead(7, "aaaa")
	r := &runs{}
	p := startPreviewer(t, f, g, d, r)
	waitFor(t, 5*time.Second, "the first preview", func() bool { return f.lastStatus("aaaa").State == "success" })

	// Five live changes at once: one run. (Counted once a later run, of
	// another head, has finished: runs of a pull request never overlap.)
	before, _ := d.count()
	waitFor(t, 5*time.Second, "the first run recorded", func() bool { return len(r.done()) == 1 })
	for range 5 {
		p.LiveChanged("staging")
	}
	waitFor(t, 5*time.Second, "the rerun", func() bool { return len(r.done()) == 2 })
	if rec := r.done()[1]; rec.Err != nil || rec.APICalls != 0 {
		t.Errorf("a rerun with the same verdict: %+v, want no forge request", rec)
	}
	f.setHead(7, "abab")
	refresh(p)
	waitFor(t, 5*time.Second, "the preview of abab", func() bool { return f.lastStatus("abab").State == "success" })
	if n, _ := d.count(); n != before+2 {
		t.Fatalf("%d runs for a burst of live changes and a new head, want 2", n-before)
	}

	// A run held in flight; the head moves: it is cancelled, the new head
	// previewed, and the old head's result never posted.
	d.mu.Lock()
	d.hold = make(chan struct{})
	d.mu.Unlock()
	f.setHead(7, "bbbb")
	refresh(p)
	waitFor(t, 5*time.Second, "the run of bbbb in flight", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return len(d.started) > 0 && d.started[len(d.started)-1] == "bbbb"
	})
	f.setHead(7, "cccc")
	refresh(p)
	waitFor(t, 5*time.Second, "the stale run cancelled", func() bool { _, c := d.count(); return len(c) == 1 && c[0] == "bbbb" })
	d.mu.Lock()
	close(d.hold)
	d.hold = nil
	d.mu.Unlock()
	waitFor(t, 5*time.Second, "the preview of cccc", func() bool { return f.lastStatus("cccc").State == "success" })
	if st := f.lastStatus("bbbb"); st.State != "pending" {
		t.Errorf("the stale head's status %+v, want it left pending", st)
	}
	comments, _ := f.Comments(context.Background(), 7)
	if len(comments) != 1 || !strings.Contains(comments[0].Body, "x: cccc") || !strings.Contains(comments[0].Body, Marker("staging")) {
		t.Fatalf("comments %+v: want one, of cccc", comments)
	}

	// Closed: the job and the branch's store are dropped.
	f.mu.Lock()
	f.prs = nil
	f.mu.Unlock()
	refresh(p)
	waitFor(t, 5*time.Second, "the branch forgotten", func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return len(g.forgotten) == 1 && g.forgotten[0] == "branch-7"
	})
}

// The comment is found by its marker after a restart (a new leader) and
// updated, and an unchanged body is not written again.
func TestPreviewerUpdatesTheExistingComment(t *testing.T) {
	f, d := newMemForge(), &dryRuns{}
	g := &memGit{f: f}
	f.setHead(3, "aaaa")
	f.comments[3] = []Comment{{ID: 41, Body: "LGTM"}, {ID: 42, Body: "old preview\n" + Marker("staging")}}
	f.nextID = 100
	r := &runs{}
	p := startPreviewer(t, f, g, d, r)
	waitFor(t, 5*time.Second, "the preview", func() bool { return f.lastStatus("aaaa").State == "success" })
	comments, _ := f.Comments(context.Background(), 3)
	if len(comments) != 2 || comments[1].ID != 42 || !strings.Contains(comments[1].Body, "x: aaaa") || comments[0].Body != "LGTM" {
		t.Fatalf("comments %+v: want the marked one updated in place", comments)
	}
	body := comments[1].Body
	f.mu.Lock()
	f.comments[3][1].Body = body + " " // would show a rewrite
	f.mu.Unlock()
	waitFor(t, 5*time.Second, "the first run recorded", func() bool { return len(r.done()) == 1 })
	p.LiveChanged("staging")
	waitFor(t, 5*time.Second, "the rerun", func() bool { return len(r.done()) == 2 })
	comments, _ = f.Comments(context.Background(), 3)
	if comments[1].Body != body+" " {
		t.Error("an unchanged preview was written again")
	}
	f.mu.Lock()
	n := len(f.statuses["aaaa"])
	f.mu.Unlock()
	if n != 2 {
		t.Errorf("%d statuses on aaaa, want the first run's pending and success only", n)
	}
}
