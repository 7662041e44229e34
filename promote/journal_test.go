package promote_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/baton-gitops/baton/promote"
)

// memJournal keeps the journal in memory, standing in for the agent's
// ConfigMap (tested against a real cluster in internal/agent): here it is
// what two promoters, one after the other, share.
type memJournal struct {
	mu     sync.Mutex // guards landed
	landed map[string]string
}

func (j *memJournal) Landed(_ context.Context, edge string) (string, bool, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	c, ok := j.landed[edge]
	return c, ok, nil
}

func (j *memJournal) RecordLanded(_ context.Context, edge, commit string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.landed == nil {
		j.landed = map[string]string{}
	}
	j.landed[edge] = commit
	return nil
}

// A promotion pull request merged while no promoter ran (the agent down)
// is reported by the next one, once, when they share a journal. Without a
// journal it never was.
func TestMergedWhileDownIsReportedOnce(t *testing.T) {
	f := newFixture(t)
	c := f.commit("env/dev", "dev change", devChange())
	journal := &memJournal{}
	first := f.promoter(func(o *promote.Options) { o.Journal = journal })
	dev := f.soaked("env/dev")
	opened := mustEvaluate(t, first, devToStaging, dev)
	wantResult(t, opened, promote.PullRequestOpened)

	// The agent goes down; a reviewer merges; the agent comes back later.
	merge := f.merge(opened.PullRequest.Number)
	later := func(o *promote.Options) { o.Clock = &clock{now: time.Now().Add(time.Hour)} }
	withJournal := func(o *promote.Options) { later(o); o.Journal = journal }

	forgetful := mustEvaluate(t, f.promoter(later), devToStaging, dev)
	wantResult(t, forgetful, promote.Skipped)
	if len(forgetful.Events) != 0 {
		t.Fatalf("a promoter without a journal reported %+v", forgetful.Events)
	}

	next := f.promoter(withJournal)
	out := mustEvaluate(t, next, devToStaging, dev)
	wantResult(t, out, promote.Skipped)
	if len(out.Events) != 1 || out.Events[0].Kind != promote.EventMerged || out.Events[0].TargetCommit != merge ||
		out.Events[0].SourceCommit != c || out.Events[0].PullRequest != opened.PullRequest.Number {
		t.Fatalf("events after the restart: %+v", out.Events)
	}
	if again := mustEvaluate(t, next, devToStaging, dev); len(again.Events) != 0 {
		t.Fatalf("reported twice by one promoter: %+v", again.Events)
	}
	if third := mustEvaluate(t, f.promoter(withJournal), devToStaging, dev); len(third.Events) != 0 {
		t.Fatalf("reported again after another restart: %+v", third.Events)
	}

	// A journal used for the first time does not report old history.
	fresh := mustEvaluate(t, f.promoter(func(o *promote.Options) { later(o); o.Journal = &memJournal{} }), devToStaging, dev)
	if len(fresh.Events) != 0 {
		t.Fatalf("a new journal reported old history: %+v", fresh.Events)
	}
}
