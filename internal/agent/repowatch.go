package agent

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/baton-gitops/baton/source"
)

// repoWatcher polls one repository and hands each followed branch's result
// to the environment loops that use the branch. It polls at the
// repository's interval with jitter, backs off after failures, and polls at
// once when triggered (by a webhook, through source.WebhookHandler).
//
// It satisfies source.WebhookTarget. A trigger that arrives while the
// replica stands by is handed to the leader through the relay, and stays
// pending here too (the first poll after this replica becomes leader is
// immediate anyway).
type repoWatcher struct {
	// name is the repository's name in the configuration.
	name    string
	relay   *triggerRelay // nil without leader election
	repo    *source.Repository
	loops   []*envLoop
	clock   Clock
	log     *slog.Logger
	timing  timing
	trigger chan struct{} // holds at most one pending trigger

	// umu guards users, cancel and done: with environments spread over
	// replicas, the watcher runs while this replica syncs at least one
	// environment of the repository (use, unuse).
	umu    sync.Mutex
	users  int
	cancel context.CancelFunc
	done   chan struct{}
}

// use runs the watcher under ctx for one more environment, starting it
// for the first.
func (w *repoWatcher) use(ctx context.Context) {
	w.umu.Lock()
	defer w.umu.Unlock()
	w.users++
	if w.users > 1 {
		return
	}
	ctx, w.cancel = context.WithCancel(ctx)
	w.done = make(chan struct{})
	done := w.done
	go func() {
		defer close(done)
		w.run(ctx)
	}()
}

// unuse stops the watcher when its last environment is gone, and waits
// for it to stop.
func (w *repoWatcher) unuse() {
	w.umu.Lock()
	defer w.umu.Unlock()
	w.users--
	if w.users > 0 {
		return
	}
	w.cancel()
	<-w.done
}

// timing is the agent's schedule settings, shared by watchers and loops.
type timing struct {
	backoffBase, backoffMax time.Duration
	jitter                  float64
}

func newRepoWatcher(name string, repo *source.Repository, loops []*envLoop, clock Clock, log *slog.Logger, t timing, relay *triggerRelay) *repoWatcher {
	return &repoWatcher{name: name, relay: relay, repo: repo, loops: loops, clock: clock, log: log, timing: t,
		trigger: make(chan struct{}, 1)}
}

// Follows reports whether a push to branch of a repository known by urls
// concerns this repository.
func (w *repoWatcher) Follows(urls []string, branch string) bool {
	return w.repo.Follows(urls, branch)
}

// Trigger asks for a poll now (a push webhook): here, and by the leader
// when this replica stands by. It never blocks.
func (w *repoWatcher) Trigger() {
	w.poke()
	w.relay.forward(w.name)
}

// poke asks this replica's watcher for a poll now. It never blocks.
func (w *repoWatcher) poke() { signal(w.trigger) }

// run polls until ctx ends.
func (w *repoWatcher) run(ctx context.Context) {
	failures := 0
	urgent := false // this poll was asked for by a webhook
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
					l.offer(br, err, urgent)
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
		urgent = false
		select {
		case <-ctx.Done():
			return
		case <-w.clock.After(wait):
		case <-w.trigger:
			urgent = true
		}
	}
}
