package agent

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/baton-gitops/baton/internal/testenv/gitserver"
	"github.com/baton-gitops/baton/source"
)

// manualClock hands every wait to the test, which fires it: time moves
// only when the test says so.
type manualClock struct {
	mu    sync.Mutex
	now   time.Time
	waits chan manualWait
}

type manualWait struct {
	d  time.Duration
	ch chan time.Time
}

func newManualClock() *manualClock {
	return &manualClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), waits: make(chan manualWait, 16)}
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.waits <- manualWait{d, ch}
	return ch
}

// next returns the next wait asked for, failing after a deadline.
func (c *manualClock) next(t *testing.T) manualWait {
	t.Helper()
	select {
	case w := <-c.waits:
		return w
	case <-time.After(30 * time.Second):
		t.Fatal("no wait was asked for within 30s")
		return manualWait{}
	}
}

// fire advances the clock by the wait and releases it.
func (c *manualClock) fire(w manualWait) {
	c.mu.Lock()
	c.now = c.now.Add(w.d)
	now := c.now
	c.mu.Unlock()
	w.ch <- now
}

// Failed polls back off exponentially up to the cap, and a success goes
// back to the interval: the injected clock shows every wait exactly
// (jitter off).
func TestPollBackoffWithInjectedClock(t *testing.T) {
	srv := gitserver.Start(t, gitserver.Options{})
	srv.CreateRepo(t, "deploy", map[string]string{"a.txt": "a\n"})
	clock := newManualClock()
	repo, err := source.NewRepository(source.RepositorySettings{
		URL: srv.HTTPURL("deploy"), Branches: []string{"env/dev"},
		Auth:     source.AuthSettings{Username: srv.User, TokenFile: writeFile(t, "token", srv.Token)},
		Interval: source.Duration{Duration: time.Hour}, Timeout: source.Duration{Duration: 30 * time.Second},
	}, source.Options{CacheDir: t.TempDir(), Clock: clock})
	require.NoError(t, err)
	defer repo.Close()
	w := newRepoWatcher("deploy", repo, nil, clock, slog.New(slog.DiscardHandler),
		timing{backoffBase: time.Second, backoffMax: 4 * time.Second, jitter: 0}, nil)

	srv.SetAuthFailure(true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.run(ctx) }()
	defer func() { cancel(); <-done }()

	for _, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		wait := clock.next(t)
		require.Equal(t, want, wait.d, "backoff after a failed poll")
		clock.fire(wait)
	}
	wait := clock.next(t)
	require.Equal(t, 4*time.Second, wait.d, "the backoff is capped")
	srv.SetAuthFailure(false) // before the wait ends: the next poll succeeds
	clock.fire(wait)
	wait = clock.next(t)
	require.Equal(t, time.Hour, wait.d, "after a good poll the interval applies again")

	// A trigger (a webhook) polls at once, without the clock.
	before := srv.Counts("deploy").Advertise
	w.Trigger()
	wait = clock.next(t)
	require.Equal(t, time.Hour, wait.d)
	require.Greater(t, srv.Counts("deploy").Advertise, before, "the trigger did not poll")
	require.NotNil(t, repo.Revision("env/dev"))
}
