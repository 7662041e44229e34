package agent

import (
	"context"
	"time"

	"github.com/baton-gitops/baton/internal/config"
)

// configSuspendReason is the reason shown for an environment suspended in
// baton.yaml.
const configSuspendReason = "suspend: true in baton.yaml"

// Control is what people ask of an environment at run time, through its
// Environment object (spec and the baton.dev/requestedAt annotation): the
// agent acts on it within seconds, without a restart.
type Control struct {
	// Suspend stops applying and promoting; By and Reason say who asked
	// and why.
	Suspend    bool
	By, Reason string
	// Generation is the object's generation: the spec the agent acts on.
	Generation int64
	// RequestedAt is the last sync request; a new value polls and syncs
	// the environment at once.
	RequestedAt string
	// LastHandled is the request the object's status says an agent acted
	// on, so that a restart does not act on it again.
	LastHandled string
}

// control is an environment's Control and what the agent did with it.
type control struct {
	Control
	// seen is the last RequestedAt acted on; handled the last one whose
	// sync finished (status.lastHandledRequestedAt).
	seen, handled string
}

// SetControl applies an environment's Control: a change of suspension is
// in force from the next pass (which it starts at once), and a new sync
// request polls the branch and syncs now. Unknown environments are
// ignored. Safe for concurrent use.
func (a *Agent) SetControl(ctx context.Context, env string, c Control) {
	var loop *envLoop
	for _, l := range a.loops {
		if l.env.Name == env {
			loop = l
		}
	}
	if loop == nil {
		return
	}
	suspendChanged, request := a.board.setControl(loop.env, c, a.parts.clock.Now())
	if suspendChanged {
		a.log.Info("suspension changed", "environment", env, "suspended", c.Suspend || loop.env.Suspend,
			"by", c.By, "reason", c.Reason)
		signal(loop.wake)
	}
	if request {
		a.log.Info("sync requested", "environment", env, "requestedAt", c.RequestedAt)
		go a.syncNow(ctx, loop, c.RequestedAt)
	}
}

// syncNow polls the environment's repository, has the loop sync, and
// marks the request handled once that pass has finished: `baton sync`
// then reads its outcome in the status.
func (a *Agent) syncNow(ctx context.Context, loop *envLoop, requestedAt string) {
	for _, w := range a.watchers {
		for _, l := range w.loops {
			if l != loop {
				continue
			}
			// Poll is safe beside the watcher's own polls (the repository
			// serialises them); the results go to every loop, as the
			// watcher's would.
			res, err := w.repo.Poll(ctx)
			for _, br := range res.Branches {
				for _, wl := range w.loops {
					if wl.env.Branch == br.Branch {
						wl.offer(br, err, wl == loop)
					}
				}
			}
		}
	}
	asked := a.parts.clock.Now()
	loop.markUrgent()
	signal(loop.wake)
	// The pass records its start time as LastSync.Time (on the same
	// clock); wait for one that started after the poll, within the
	// environment's own bound on a pass.
	ctx, cancel := context.WithTimeout(ctx, loop.env.Timeout.Duration+time.Minute)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if st, ok := a.board.environment(loop.env.Name); ok && st.LastSync != nil && !st.LastSync.Time.Before(asked) {
			a.board.markHandled(loop.env.Name, requestedAt)
			return
		}
		select {
		case <-ctx.Done():
			a.log.Warn("sync requested but no pass finished", "environment", loop.env.Name, "requestedAt", requestedAt)
			return
		case <-tick.C:
		}
	}
}

// pendingRequest returns env's sync request not yet acted on, if any: one
// that came while another replica synced env.
func (b *statusBoard) pendingRequest(env string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.controls[env]
	if c == nil || c.RequestedAt == "" || c.RequestedAt == c.seen {
		return ""
	}
	c.seen = c.RequestedAt
	return c.RequestedAt
}

// environment returns a copy of env's status.
func (b *statusBoard) environment(env string) (EnvironmentStatus, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.envs[env]
	if !ok {
		return EnvironmentStatus{}, false
	}
	return copyEnv(*e), true
}

// markHandled records that the sync request at finished.
func (b *statusBoard) markHandled(env, at string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c := b.controls[env]; c != nil {
		c.handled = at
		signal(b.changed)
	}
}

// setControl records c for env and reports whether the suspension changed
// and whether c carries a new sync request (which it marks handled).
func (b *statusBoard) setControl(env config.Environment, c Control, now time.Time) (suspendChanged, request bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	prev := b.controls[env.Name]
	if prev == nil {
		prev = &control{seen: c.LastHandled, handled: c.LastHandled}
		b.controls[env.Name] = prev
	}
	old := prev.Control
	prev.Control = c
	// With environments spread over replicas, the one syncing env acts on
	// the request (pendingRequest, when it takes env over).
	request = c.RequestedAt != "" && c.RequestedAt != prev.seen && (b.held == nil || b.held[env.Name])
	if request {
		prev.seen = c.RequestedAt
	}
	st := b.envs[env.Name]
	if st == nil {
		return false, false
	}
	effective := env.Suspend || c.Suspend
	by, reason := "", ""
	switch {
	case env.Suspend:
		reason = configSuspendReason
	case c.Suspend:
		by, reason = c.By, c.Reason
	}
	if st.Suspended != effective {
		st.SuspendedSince = time.Time{}
		if effective {
			st.SuspendedSince = now
		}
	}
	st.Suspended, st.SuspendedBy, st.SuspendReason = effective, by, reason
	signal(b.changed)
	return old.Suspend != c.Suspend, request
}

// controlOf returns env's Control and the last sync request handled.
func (b *statusBoard) controlOf(env string) (Control, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c := b.controls[env]; c != nil {
		return c.Control, c.handled
	}
	return Control{}, ""
}

// suspended reports whether the environment is suspended now: in
// baton.yaml or through its Environment object.
func (l *envLoop) suspended() bool {
	if l.env.Suspend {
		return true
	}
	c, _ := l.board.controlOf(l.env.Name)
	return c.Suspend
}

// runEnv is the environment's settings as in force now: baton.yaml's, with
// the suspension people asked for at run time.
func (l *envLoop) runEnv() config.Environment {
	env := l.env
	env.Suspend = l.suspended()
	return env
}
