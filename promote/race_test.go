package promote_test

import (
	"context"
	"sync"
	"testing"

	"github.com/baton-gitops/baton/promote"
	"github.com/baton-gitops/baton/source"
)

// laggingRepo is the promoter's real repository whose polls can be made to
// answer what they answered last: the branch heads as read just before a
// merge, which is what a promoter sees when a reviewer merges while it
// evaluates.
type laggingRepo struct {
	*source.Repository
	mu     sync.Mutex // guards frozen and last
	frozen bool
	last   source.PollResult
}

func (r *laggingRepo) Poll(ctx context.Context) (source.PollResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.frozen {
		return r.last, nil
	}
	res, err := r.Repository.Poll(ctx)
	if err == nil {
		r.last = res
	}
	return res, err
}

func (r *laggingRepo) freeze(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.frozen = on
}

// A promotion pull request merged while the promoter evaluates (its read of
// the target is from before the merge) is not proposed again, and a pull
// request left open although the target has its content is closed. The
// fault suite found both: a second, empty pull request stayed open after
// the first was merged.
func TestMergedPromotionIsNotProposedAgain(t *testing.T) {
	for _, style := range []string{"merge", "squash"} {
		t.Run(style, func(t *testing.T) {
			f := newFixture(t)
			f.commit("env/dev", "dev change", devChange())
			repo := &laggingRepo{Repository: f.repository()}
			p := f.promoter(func(o *promote.Options) { o.Repo = repo })
			dev := f.soaked("env/dev")
			opened := mustEvaluate(t, p, devToStaging, dev)
			wantResult(t, opened, promote.PullRequestOpened)

			// The heads as they are with the pull request open, then frozen:
			// the next evaluation reads them although the merge moved them.
			wantResult(t, mustEvaluate(t, p, devToStaging, dev), promote.PullRequestCurrent)
			repo.freeze(true)
			f.mergeWith(opened.PullRequest.Number, map[string]any{"Do": style})
			again := mustEvaluate(t, p, devToStaging, dev)
			if open := f.openPulls(); len(open) != 0 {
				t.Fatalf("after the merge, open pull requests %+v (result %s)", open, again.Result)
			}
			wantResult(t, again, promote.Skipped)

			repo.freeze(false)
			wantResult(t, mustEvaluate(t, p, devToStaging, dev), promote.Skipped)
			if open := f.openPulls(); len(open) != 0 {
				t.Fatalf("open pull requests %+v", open)
			}
		})
	}
}

// An open promotion pull request whose content reached the target another
// way (here a person pushed it) is closed: it proposes nothing any more.
func TestObsoletePullRequestIsClosed(t *testing.T) {
	f := newFixture(t)
	f.commit("env/dev", "dev change", devChange())
	p := f.promoter(nil)
	dev := f.soaked("env/dev")
	opened := mustEvaluate(t, p, devToStaging, dev)
	wantResult(t, opened, promote.PullRequestOpened)

	// A person merges the promotion branch into env/staging by hand.
	f.checkout("env/staging")
	f.git("merge", "-q", "--no-ff", "-m", "merge the promotion by hand", "origin/"+promote.PromotionBranch(devToStaging))
	f.push("env/staging")

	wantResult(t, mustEvaluate(t, p, devToStaging, dev), promote.Skipped)
	if open := f.openPulls(); len(open) != 0 {
		t.Fatalf("the obsolete pull request is still open: %+v", open)
	}
	if c := f.comments(opened.PullRequest.Number); len(c) == 0 {
		t.Error("closed without a comment saying why")
	}
}
