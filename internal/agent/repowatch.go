package agent

import (
	"context"
	"log/slog"
	"time"

	"github.com/baton-gitops/baton/source"
)

// repoWatcher polls one repository and hands each followed branch's result
// to the environment loops that use the branch. It polls at the
// repository's interval with jitter, backs off after failures, and polls at
// once when triggered (by a webhook, through source.WebhookHandler).
//
// It satisfies source.WebhookTarget. A trigger that arrives while the
// replica stands by stays pending, so the first poll after it becomes
// leader is immediate anyway.
type repoWatcher struct {
	repo    *source.Repository
	loops   []*envLoop
	clock   Clock
	log     *slog.Logger
	timing  timing
	trigger chan struct{} // holds at most one pending trigger
}

// timing is the agent's schedule settings, shared by watchers and loops.
type timing struct {
	backoffBase, backoffMax time.Duration
	jitter                  float64
}

func newRepoWatcher(repo *source.Repository, loops []*envLoop, clock Clock, log *slog.Logger, t timing) *repoWatcher {
	return &repoWatcher{repo: repo, loops: loops, clock: clock, log: log, timing: t, trigger: make(chan struct{}, 1)}
}

// Follows reports whether a push to branch of a repository known by urls
// concerns this repository.
func (w *repoWatcher) Follows(urls []string, branch string) bool {
	return w.repo.Follows(urls, branch)
}

// Trigger asks for a poll now. It never blocks.
func (w *repoWatcher) Trigger() {
	select {
	case w.trigger <- struct{}{}:
	default:
	}
}

// run polls until ctx ends.
func (w *repoWatcher) run(ctx context.Context) {
	failures := 0
	for {
		res, err := w.repo.Poll(ctx)
		if ctx.Err() != nil {
			return
		}
		// A failed poll still carries every branch's last good revision;
		// if it carries nothing, each loop still hears of the failure (its
		// first sync is then attempted and reported as failed).
		if len(res.Branches) == 0 && err != nil {
			for _, l := range w.loops {
				res.Branches = append(res.Branches, source.BranchResult{Branch: l.env.Branch, Err: err})
			}
		}
		for _, br := range res.Branches {
			for _, l := range w.loops {
				if l.env.Branch == br.Branch {
					l.offer(br, err)
				}
			}
		}
		wait := randomJitter(w.repo.Interval(), w.timing.jitter)
		if err != nil {
			failures++
			wait = randomJitter(backoff(failures, w.timing.backoffBase, w.timing.backoffMax), w.timing.jitter)
			w.log.Warn("poll failed", "repository", w.repo.URL(), "error", err, "retryIn", wait.Round(time.Millisecond).String())
		} else {
			failures = 0
		}
		select {
		case <-ctx.Done():
			return
		case <-w.clock.After(wait):
		case <-w.trigger:
		}
	}
}
