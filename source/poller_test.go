package source

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/baton-gitops/baton/internal/testenv/gitserver"
)

// stepClock fires After channels when the test advances it past their
// deadline.
type stepClock struct {
	mu      sync.Mutex // guards now and waiters
	now     time.Time
	waiters []stepWaiter
	added   chan struct{} // receives a value each time After is called
}

type stepWaiter struct {
	at time.Time
	ch chan time.Time
}

func newStepClock() *stepClock {
	return &stepClock{now: time.Unix(1_700_000_000, 0), added: make(chan struct{}, 16)}
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.waiters = append(c.waiters, stepWaiter{c.now.Add(d), ch})
	c.added <- struct{}{}
	return ch
}

func (c *stepClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

func TestPollerPollsAtItsInterval(t *testing.T) {
	srv := startServer(t)
	repo := srv.CreateRepo(t, "app", baseFiles)
	r := openRepo(t, httpsSettings(t, srv, "app", "env/dev"), Options{})
	clock := newStepClock()
	p := NewPoller(r, PollerOptions{Interval: time.Minute, Clock: clock})
	results := make(chan PollResult, 4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, func(res PollResult, _ error) { results <- res }) }()

	waitFor := func(what string, ch <-chan struct{}) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(20 * time.Second):
			t.Fatalf("timed out waiting for %s", what)
		}
	}
	next := func() PollResult {
		t.Helper()
		select {
		case res := <-results:
			return res
		case <-time.After(20 * time.Second):
			t.Fatal("no poll result")
			return PollResult{}
		}
	}

	first := next()
	waitFor("the poller to wait for its interval", clock.added)
	head := repo.Commit(t, "env/dev", gitserver.Change{Write: map[string]string{"v": "2"}})
	clock.advance(59 * time.Second)
	select {
	case res := <-results:
		t.Fatalf("polled before the interval passed: %+v", res)
	default:
	}
	clock.advance(time.Second)
	second := next()
	if branchResult(t, first, "env/dev").Revision.Commit == head ||
		branchResult(t, second, "env/dev").Revision.Commit != head {
		t.Fatal("the interval poll did not pick up the commit")
	}

	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run returned %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not stop on cancel")
	}
}

func TestTriggersCoalesce(t *testing.T) {
	srv := startServer(t)
	srv.CreateRepo(t, "app", baseFiles)
	r := openRepo(t, httpsSettings(t, srv, "app", "env/dev"), Options{})
	p := NewPoller(r, PollerOptions{})
	for range 5 {
		p.Trigger() // never blocks
	}
	if len(p.trigger) != 1 {
		t.Fatalf("%d pending triggers, want 1", len(p.trigger))
	}
	if p.interval != DefaultInterval {
		t.Errorf("interval %v, want the repository's", p.interval)
	}
}
