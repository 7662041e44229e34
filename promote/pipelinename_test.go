package promote_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/baton-gitops/baton/internal/githash"
	"github.com/baton-gitops/baton/promote"
)

// A named pipeline (one of several applications on one agent) says so in
// its pull requests: the title starts with its name in brackets and the
// description names it. Squash-merged with only that title kept and the
// branch deleted, the promotion is still recognised.
func TestNamedPipelinePullRequest(t *testing.T) {
	f := newFixture(t)
	c := f.commit("env/dev", "dev change", devChange())
	p := f.promoter(func(o *promote.Options) { o.Pipeline.Name = "shop" })
	dev := f.soaked("env/dev")
	opened := mustEvaluate(t, p, devToStaging, dev)
	wantResult(t, opened, promote.PullRequestOpened)
	pr := f.openPulls()[0]
	if want := "[shop] promote dev@" + githash.Short(c) + " to staging"; pr.Title != want {
		t.Errorf("title %q, want %q", pr.Title, want)
	}
	if !strings.Contains(pr.Body, "Pipeline: **shop**") {
		t.Errorf("the description does not name the pipeline:\n%s", pr.Body)
	}

	number := opened.PullRequest.Number
	squash := f.squash(number, map[string]any{"MergeTitleField": fmt.Sprintf("%s (#%d)", pr.Title, number),
		"delete_branch_after_merge": true})
	after := mustEvaluate(t, p, devToStaging, dev)
	wantResult(t, after, promote.Skipped)
	if len(after.Events) != 1 || after.Events[0].Kind != promote.EventMerged || after.Events[0].TargetCommit != squash ||
		after.Events[0].SourceCommit != c {
		t.Fatalf("merge event %+v", after.Events)
	}
}
