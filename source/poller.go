package source

import (
	"context"
	"time"
)

// PollerOptions configures a Poller.
type PollerOptions struct {
	// Interval between polls; zero means the repository's interval.
	Interval time.Duration
	// Clock times the interval; nil means the system clock.
	Clock Clock
}

// Poller polls one repository at its interval and whenever Trigger is
// called (by the webhook handler, for instance).
type Poller struct {
	repo     *Repository
	interval time.Duration
	clock    Clock
	// trigger holds at most one pending request: triggers that arrive
	// while a poll runs are merged into the next one.
	trigger chan struct{}
}

// NewPoller returns a poller for repo. It does nothing until Run.
func NewPoller(repo *Repository, opts PollerOptions) *Poller {
	p := &Poller{repo: repo, interval: opts.Interval, clock: opts.Clock, trigger: make(chan struct{}, 1)}
	if p.interval <= 0 {
		p.interval = repo.Interval()
	}
	if p.clock == nil {
		p.clock = realClock{}
	}
	return p
}

// Run polls at once, then each time the interval passes or Trigger is
// called, until ctx is done; it then returns ctx.Err(). handle receives each
// poll's result on Run's goroutine: a slow handle delays the next poll, and
// the interval restarts after each poll.
func (p *Poller) Run(ctx context.Context, handle func(PollResult, error)) error {
	for {
		res, err := p.repo.Poll(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		handle(res, err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.clock.After(p.interval):
		case <-p.trigger:
		}
	}
}

// Trigger asks for a poll as soon as possible. It never blocks.
func (p *Poller) Trigger() {
	select {
	case p.trigger <- struct{}{}:
	default:
	}
}

// Follows reports whether a push to branch of a repository known by urls
// concerns the polled repository (see Repository.Follows).
func (p *Poller) Follows(urls []string, branch string) bool {
	return p.repo.Follows(urls, branch)
}
