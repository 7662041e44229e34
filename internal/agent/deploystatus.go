package agent

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/baton-gitops/baton/internal/githash"
	"github.com/baton-gitops/baton/promote"
)

// DeployStatusContext is the commit status of a deploy: baton/<env>.
func DeployStatusContext(env string) string { return "baton/" + env }

// statusSetter sets commit statuses; the forge clients are ones.
type statusSetter interface {
	SetCommitStatus(ctx context.Context, sha string, st promote.CommitStatus) error
}

// deployStatuses sets baton/<env> on every commit an environment syncs:
// pending once applied, while the rollout is watched; success when it is
// healthy, with the time it took from the start of the sync; failure with
// the named cause when the sync or the rollout fails. A later change of
// health of the same commit (the monitor sees it degrade, or recover)
// updates it. It is a Recorder, fed by the environment loops; requests to
// the forge go out in order from one goroutine, so that a slow forge
// never delays a sync.
type deployStatuses struct {
	forge statusSetter
	log   *slog.Logger
	clock Clock
	// only lists the environments whose commits are the forge's; nil
	// means every one.
	only map[string]bool

	mu     sync.Mutex // guards envs, closed and sends on queue
	envs   map[string]*deployState
	closed bool
	queue  chan statusUpdate
	stop   context.CancelFunc
	done   chan struct{}
}

// deployState is an environment's current deploy.
type deployState struct {
	revision string
	started  time.Time
	state    promote.StatusState
	desc     string
	// syncFailed: the last sync of revision failed (not its health), so
	// the next successful one starts the deploy again.
	syncFailed bool
}

type statusUpdate struct {
	env, sha string
	st       promote.CommitStatus
}

// statusQueue bounds the updates waiting for the forge; past it the
// oldest news is dropped (a newer update of the same commit follows).
const statusQueue = 256

func newDeployStatuses(forge statusSetter, log *slog.Logger, clock Clock) *deployStatuses {
	ctx, stop := context.WithCancel(context.Background())
	d := &deployStatuses{forge: forge, log: log, clock: clock, envs: map[string]*deployState{},
		queue: make(chan statusUpdate, statusQueue), stop: stop, done: make(chan struct{})}
	go d.run(ctx)
	return d
}

// close stops sending: the updates already queued get a few seconds to
// go out, then the requests in flight are cancelled.
func (d *deployStatuses) close() {
	d.mu.Lock()
	d.closed = true
	close(d.queue)
	d.mu.Unlock()
	select {
	case <-d.done:
	case <-d.clock.After(5 * time.Second):
		d.stop()
		<-d.done
	}
	d.stop()
}

func (d *deployStatuses) run(ctx context.Context) {
	defer close(d.done)
	for u := range d.queue {
		var err error
		for attempt, wait := 1, time.Second; attempt <= 3; attempt, wait = attempt+1, 2*wait {
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err = d.forge.SetCommitStatus(rctx, u.sha, u.st)
			cancel()
			if err == nil || ctx.Err() != nil {
				break
			}
			select {
			case <-ctx.Done():
			case <-d.clock.After(wait):
			}
		}
		if err != nil && ctx.Err() == nil {
			d.log.Warn("deploy status not set", "environment", u.env, "commit", githash.Short(u.sha), "state", u.st.State, "error", err.Error())
		}
	}
}

// set records and queues a state for env's deploy of revision, when it
// says something new.
func (d *deployStatuses) set(env, revision string, state promote.StatusState, desc string) {
	d.mu.Lock()
	s := d.envs[env]
	if s == nil || s.revision != revision {
		s = &deployState{revision: revision, started: d.clock.Now()}
		d.envs[env] = s
	}
	if d.closed || (s.state == state && s.desc == desc) {
		d.mu.Unlock()
		return
	}
	s.state, s.desc = state, desc
	u := statusUpdate{env: env, sha: revision, st: promote.CommitStatus{Context: DeployStatusContext(env), State: state, Description: desc}}
	select {
	case d.queue <- u:
	default:
		d.log.Warn("deploy status dropped: the forge is behind", "environment", env, "commit", githash.Short(revision))
	}
	d.mu.Unlock()
}

// covers says whether env's commits are the forge's.
func (d *deployStatuses) covers(env string) bool { return d.only == nil || d.only[env] }

// SyncStarted marks a commit pending as soon as its first sync begins, so
// that a merge commit shows the deploy under way while it is applied. A
// resync of the commit already reported changes nothing.
func (d *deployStatuses) SyncStarted(env, revision string) {
	if !d.covers(env) {
		return
	}
	d.mu.Lock()
	s := d.envs[env]
	again := s != nil && s.revision == revision && !s.syncFailed
	d.mu.Unlock()
	if !again && revision != "" {
		d.set(env, revision, promote.StatusPending, "applying")
	}
}

// SyncDone marks a newly synced commit pending and a failed sync failed.
// A resync of the commit already reported changes nothing.
func (d *deployStatuses) SyncDone(r SyncRecord) {
	if r.Revision == "" || r.Result == SyncSuspended || !d.covers(r.Environment) {
		return
	}
	if r.Result == SyncFailed {
		d.set(r.Environment, r.Revision, promote.StatusFailure, fmt.Sprintf("%s failed: %s", r.FailedStage, r.Error))
		d.mu.Lock()
		d.envs[r.Environment].syncFailed = true
		d.mu.Unlock()
		return
	}
	d.mu.Lock()
	s := d.envs[r.Environment]
	again := s != nil && s.revision == r.Revision && !s.syncFailed && s.desc != "applying"
	if !again {
		// The deploy began when this sync did.
		started := d.clock.Now().Add(-r.Duration)
		if s != nil && s.revision == r.Revision {
			s.started, s.syncFailed = started, false
		} else {
			d.envs[r.Environment] = &deployState{revision: r.Revision, started: started}
		}
	}
	d.mu.Unlock()
	if !again {
		d.set(r.Environment, r.Revision, promote.StatusPending, "applied; waiting for the rollout to become healthy")
	}
}

// HealthChanged turns the deploy of the verdict's commit to success or
// failure.
func (d *deployStatuses) HealthChanged(r HealthRecord) {
	d.mu.Lock()
	s := d.envs[r.Environment]
	current := s != nil && s.revision == r.Revision
	var took time.Duration
	if current {
		took = d.clock.Now().Sub(s.started)
	}
	d.mu.Unlock()
	if !current {
		return // a verdict about a commit this agent did not just sync
	}
	switch r.Status {
	case "Healthy":
		d.set(r.Environment, r.Revision, promote.StatusSuccess, fmt.Sprintf("healthy in %s", took.Round(100*time.Millisecond)))
	case "Degraded", "Unknown":
		cause := r.Cause
		if cause == "" {
			cause = "unhealthy"
		}
		desc := cause
		if r.Message != "" {
			desc += ": " + r.Message
		}
		d.set(r.Environment, r.Revision, promote.StatusFailure, desc)
	}
}

// PromotionDone is not a deploy.
func (d *deployStatuses) PromotionDone(PromotionRecord) {}

// LeaderChanged is not a deploy.
func (d *deployStatuses) LeaderChanged(bool) {}

// EnvironmentReleased forgets env's deploy: another replica syncs it now
// and reports its deploys.
func (d *deployStatuses) EnvironmentReleased(env string) {
	d.mu.Lock()
	delete(d.envs, env)
	d.mu.Unlock()
}

// recorders passes every record to each of its Recorders, in order.
type recorders []Recorder

// syncStarter is a Recorder that wants to know when a sync begins.
type syncStarter interface {
	SyncStarted(env, revision string)
}

// SyncStarted tells the Recorders that want to know.
func (rs recorders) SyncStarted(env, revision string) {
	for _, x := range rs {
		if s, ok := x.(syncStarter); ok {
			s.SyncStarted(env, revision)
		}
	}
}

func (rs recorders) SyncDone(r SyncRecord) {
	for _, x := range rs {
		x.SyncDone(r)
	}
}

func (rs recorders) HealthChanged(r HealthRecord) {
	for _, x := range rs {
		x.HealthChanged(r)
	}
}

func (rs recorders) PromotionDone(r PromotionRecord) {
	for _, x := range rs {
		x.PromotionDone(r)
	}
}

func (rs recorders) LeaderChanged(leading bool) {
	for _, x := range rs {
		x.LeaderChanged(leading)
	}
}

func (rs recorders) EnvironmentReleased(env string) {
	for _, x := range rs {
		x.EnvironmentReleased(env)
	}
}
