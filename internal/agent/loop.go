package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/baton-gitops/baton/health"
	"github.com/baton-gitops/baton/internal/config"
	"github.com/baton-gitops/baton/internal/githash"
	"github.com/baton-gitops/baton/internal/workpool"
	"github.com/baton-gitops/baton/reconciler"
	"github.com/baton-gitops/baton/render"
	"github.com/baton-gitops/baton/source"
)

// parts are what every environment loop uses; the Agent builds them once.
type parts struct {
	renderer   *render.Renderer
	reconciler *reconciler.Reconciler
	checker    *health.Checker
	promoter   Promoter // nil: no promotion
	recorder   Recorder
	log        *slog.Logger
	clock      Clock
	board      *statusBoard
	timing     timing
	// syncs bounds the renders and applies running at once, waits the
	// health waits; both shared fairly between environments.
	syncs, waits *workpool.Pool
}

// envLoop syncs one environment: it waits for a new revision (offered by
// the repository's watcher) or its resync time, renders, applies, waits for
// health, keeps monitoring, and promotes along the pipeline once the
// revision has soaked.
//
// One goroutine runs it; only offer and the monitor's callback come from
// elsewhere, through mu and the channels.
type envLoop struct {
	*parts
	// checker watches as the environment's identity (its ServiceAccount,
	// or the agent's own).
	checker *health.Checker
	env     config.Environment
	// pipeline names env's pipeline, "" when it is in none.
	pipeline string
	edges    []config.Edge
	// reverts are the edges into env whose promotions are reverted when
	// they leave env degraded.
	reverts  []config.Edge
	interval time.Duration

	// mu guards latest, sourceErr, offered and health.
	mu        sync.Mutex
	latest    *source.Revision
	sourceErr error
	// offered says a poll result came during the current leadership.
	offered bool
	// urgent says the next sync was asked for (a push webhook, `baton
	// sync`): it goes before routine work.
	urgent bool
	health healthSeen

	// wake says latest changed (or the first poll result came); healthWake
	// says the monitor saw the health change. Each holds one pending signal.
	wake, healthWake chan struct{}

	// applying is held across a pass's render and apply, so that giving the
	// environment to another replica (drain) waits for the pass in hand.
	applying sync.Mutex
	// tmu guards stop, which cancels the loop of the current tenure (the
	// time this replica holds the environment's Lease).
	tmu  sync.Mutex
	stop context.CancelFunc
}

// healthSeen is the last health verdict and the revision it is about.
type healthSeen struct {
	revision string
	report   health.Report
}

// loopState is the loop goroutine's own memory between passes.
type loopState struct {
	synced         *source.Revision
	syncedAt       time.Time
	healthRevision string
	healthRefs     []health.ObjectRef
	stopMonitor    func()
	failures       int
}

func newEnvLoop(p *parts, env config.Environment, edges []config.Edge, interval time.Duration) *envLoop {
	return &envLoop{parts: p, env: env, edges: edges, interval: interval,
		wake: make(chan struct{}, 1), healthWake: make(chan struct{}, 1)}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// offer hands the loop a poll's result for its branch; urgent says the
// poll was asked for (a push webhook), so that a sync it brings goes
// before routine work. It never blocks.
func (l *envLoop) offer(br source.BranchResult, pollErr error, urgent bool) {
	err := br.Err
	if err == nil {
		err = pollErr
	}
	l.mu.Lock()
	changed := !l.offered || (br.Revision != nil && (l.latest == nil || l.latest.Commit != br.Revision.Commit))
	if br.Revision != nil {
		l.latest = br.Revision
	}
	l.sourceErr, l.offered = err, true
	rev := l.latest
	if urgent && changed {
		l.urgent = true
	}
	l.mu.Unlock()
	if urgent && changed && l.syncs != nil {
		l.syncs.Boost(l.env.Name) // already waiting for a routine pass
	}
	l.board.update(l.env.Name, func(s *EnvironmentStatus) {
		s.Head = revisionInfo(rev)
		s.SourceError = errString(err)
	})
	if changed {
		signal(l.wake)
	}
}

// newLeadership prepares the loop for a leadership: the first poll result
// of that leadership wakes it whether or not the revision moved, so that a
// replica that leads again (A→B→A) syncs, monitors and promotes at once
// instead of waiting for a new commit. The revision known from the last
// leadership is kept: it is still the last good one if the poll fails.
func (l *envLoop) newLeadership() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.offered = false
}

// setTenure records how to stop the loop of the tenure that starts.
func (l *envLoop) setTenure(stop context.CancelFunc) {
	l.tmu.Lock()
	defer l.tmu.Unlock()
	l.stop = stop
}

// drain stops the loop after the render and apply in hand, if any: it
// waits for the pass to leave them, then cancels the loop's context (a
// health wait is interrupted; the next holder waits again).
func (l *envLoop) drain() {
	l.applying.Lock()
	defer l.applying.Unlock()
	l.tmu.Lock()
	defer l.tmu.Unlock()
	if l.stop != nil {
		l.stop()
	}
}

// markUrgent makes the next sync go before routine work (`baton sync`).
func (l *envLoop) markUrgent() {
	l.mu.Lock()
	l.urgent = true
	l.mu.Unlock()
	if l.syncs != nil {
		l.syncs.Boost(l.env.Name)
	}
}

// takeUrgent reports the priority of the next sync and clears it.
func (l *envLoop) takeUrgent() workpool.Priority {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.urgent {
		l.urgent = false
		return workpool.Urgent
	}
	return workpool.Routine
}

// current returns the newest good revision and the last source error.
func (l *envLoop) current() (*source.Revision, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.latest, l.sourceErr
}

// run syncs until ctx ends. A pass in flight when ctx ends is abandoned:
// the reconciler names the new revision in the inventory only after every
// object applied, and records beforehand what it may create, so an
// abandoned pass leaves the previous revision in force, loses track of
// nothing, and the next leader's pass completes the work.
func (l *envLoop) run(ctx context.Context) {
	st := &loopState{stopMonitor: func() {}}
	defer func() { st.stopMonitor() }()
	var resync, retry <-chan time.Time // nil channels block: no timer yet
	for {
		syncDue := false
		select {
		case <-ctx.Done():
			return
		case <-l.wake:
			syncDue = true
		case <-resync:
			syncDue = true
		case <-l.healthWake:
		case <-retry:
		}
		if syncDue {
			ok := l.pass(ctx, st)
			if ctx.Err() != nil {
				return
			}
			wait := l.interval
			if ok {
				st.failures = 0
			} else {
				st.failures++
				wait = backoff(st.failures, l.timing.backoffBase, l.timing.backoffMax)
			}
			resync = l.clock.After(randomJitter(wait, l.timing.jitter))
		}
		retry = l.promote(ctx, st)
	}
}

// pass runs one sync and, for a new revision, the health wait. It reports
// whether the sync succeeded.
func (l *envLoop) pass(ctx context.Context, st *loopState) bool {
	// A worker first: the wait for one is not part of the pass (nor of its
	// timeout), and the revision is read once it has one, so that a
	// revision that came meanwhile is the one synced.
	release := func() {}
	if l.syncs != nil {
		r, err := l.syncs.Acquire(ctx, l.env.Name, l.takeUrgent())
		if err != nil {
			return false // ctx ended
		}
		release = sync.OnceFunc(r)
	}
	defer release()
	rev, srcErr := l.current()
	if rev == nil {
		if srcErr == nil {
			srcErr = errors.New("no revision yet")
		}
		l.finish(syncOutcome{failedStage: StageSource, err: srcErr, started: l.clock.Now()})
		return false
	}
	l.applying.Lock()
	if ctx.Err() != nil {
		l.applying.Unlock()
		return false // drained (given to another replica) or stopped
	}
	res, err := l.sync(ctx, rev)
	l.applying.Unlock()
	release() // the health wait below takes a slot of its own
	if err != nil || res.Suspended {
		return err == nil
	}
	if st.synced == nil || st.synced.Commit != rev.Commit {
		st.syncedAt = l.clock.Now()
	}
	st.synced = rev
	refs := healthRefs(res)
	if rev.Commit == st.healthRevision && sameRefs(refs, st.healthRefs) {
		return true // the monitor is following these objects already
	}
	st.stopMonitor()
	st.stopMonitor = func() {}
	report := l.waitHealth(ctx, rev, refs)
	if report.Overall == health.Cancelled {
		return true // a newer revision (or shutdown) interrupted the wait
	}
	st.healthRevision, st.healthRefs = rev.Commit, refs
	st.stopMonitor = l.monitor(ctx, rev, refs, report)
	return true
}

// syncOutcome is what finish records about a pass.
type syncOutcome struct {
	rev                 *source.Revision
	started             time.Time
	renderDur, applyDur time.Duration
	objects             int
	failedStage         string
	err                 error
	result              reconciler.Result
}

// sync renders rev and applies it, bounded by the environment's timeout.
func (l *envLoop) sync(ctx context.Context, rev *source.Revision) (reconciler.Result, error) {
	o := syncOutcome{rev: rev, started: l.clock.Now()}
	if s, ok := l.recorder.(syncStarter); ok {
		s.SyncStarted(l.env.Name, rev.Commit)
	}
	ctx, cancel := context.WithTimeout(ctx, l.env.Timeout.Duration)
	defer cancel()
	rendered, err := l.renderer.Render(ctx, rev.Snapshot, l.env.Path)
	o.renderDur = l.clock.Now().Sub(o.started)
	if err != nil {
		o.failedStage, o.err = StageRender, fmt.Errorf("render %s@%s:%s: %w", rev.Repository, rev.Branch, l.env.Path, err)
		l.finish(o)
		return reconciler.Result{}, o.err
	}
	o.objects = len(rendered.Objects)
	applyStart := l.clock.Now()
	req := SyncRequest(l.runEnv(), rev.Commit, rendered.Objects)
	req.SourceOf = l.renderer.Sources(rev.Snapshot, l.env.Path)
	o.result, err = l.reconciler.Sync(ctx, req)
	o.applyDur = l.clock.Now().Sub(applyStart)
	if err != nil {
		o.failedStage, o.err = StageApply, err
	}
	l.finish(o)
	return o.result, o.err
}

// finish records a pass: metrics, one log line, status, and readiness (the
// first sync was attempted; the health wait that may follow does not count).
func (l *envLoop) finish(o syncOutcome) {
	defer l.board.markAttempted(l.env.Name)
	rec := SyncRecord{
		Environment: l.env.Name, Pipeline: l.pipeline, Result: SyncSucceeded, FailedStage: o.failedStage,
		Duration: l.clock.Now().Sub(o.started), RenderDuration: o.renderDur, ApplyDuration: o.applyDur,
		Objects: o.objects, Counts: map[string]int{}, PreviousRevision: o.result.PreviousRevision,
		Drifted: len(o.result.Drifted), Pruned: len(o.result.Pruned),
		Branch: l.env.Branch, Interval: l.interval, DriftMode: l.env.Drift,
	}
	if o.rev != nil {
		rec.Revision, rec.CommitTime = o.rev.Commit, o.rev.Time
		rec.Author = o.rev.Author.Name + " <" + o.rev.Author.Email + ">"
		rec.Revert = len(o.rev.Reverts()) > 0
	}
	if o.err != nil {
		rec.Error = o.err.Error()
		rec.Refused = refusal(o.err)
	}
	for action, n := range o.result.Counts {
		rec.Counts[string(action)] = n
	}
	switch {
	case o.err != nil:
		rec.Result = SyncFailed
	case o.result.Suspended:
		rec.Result = SyncSuspended
	}
	l.recorder.SyncDone(rec)

	attrs := []any{"environment", l.env.Name, "revision", githash.Short(rec.Revision), "result", rec.Result,
		"objects", rec.Objects, "counts", rec.Counts, "drifted", rec.Drifted, "pruned", rec.Pruned,
		"duration", rec.Duration.Round(time.Millisecond).String()}
	if o.err != nil {
		l.log.Error("sync", append(attrs, "stage", o.failedStage, "error", o.err.Error())...)
	} else {
		l.log.Info("sync", attrs...)
	}

	l.board.update(l.env.Name, func(s *EnvironmentStatus) {
		s.LastSync = &SyncInfo{Time: o.started, Revision: rec.Revision, Result: rec.Result, Error: errString(o.err),
			Duration: source.Duration{Duration: rec.Duration}, Counts: rec.Counts}
		if o.err == nil && !o.result.Suspended && o.rev != nil {
			if s.Synced == nil || s.Synced.Commit != o.rev.Commit {
				s.SyncedAt = l.clock.Now()
			}
			s.Synced = revisionInfo(o.rev)
			s.Drifted = nil
			for _, ref := range o.result.Drifted {
				s.Drifted = append(s.Drifted, ref.String())
			}
		}
	})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func revisionInfo(rev *source.Revision) *RevisionInfo {
	if rev == nil {
		return nil
	}
	return &RevisionInfo{Commit: rev.Commit, Subject: rev.Subject(), Time: rev.Time}
}

// SyncRequest is the reconciler request for env at revision with its
// rendered objects: the one mapping of an environment's settings, shared
// by the agent's syncs and `baton diff`.
func SyncRequest(env config.Environment, revision string, objects []*unstructured.Unstructured) reconciler.Request {
	return reconciler.Request{
		Environment:      env.Name,
		Revision:         revision,
		DefaultNamespace: env.Namespace,
		Objects:          objects,
		Prune:            env.PruneEnabled(),
		AllowEmpty:       env.AllowEmpty,
		Drift:            reconciler.DriftMode(env.Drift),
		Ignore:           ignoreRules(env.Ignore),
		Suspend:          env.Suspend,
		Scope:            requestScope(env),
		ServiceAccount:   requestAccount(env),
	}
}

// ignoreRules maps the configuration's ignore rules onto the reconciler's.
func ignoreRules(rules []config.IgnoreRule) []reconciler.IgnoreRule {
	var out []reconciler.IgnoreRule
	for _, r := range rules {
		out = append(out, reconciler.IgnoreRule{Group: r.Group, Kind: r.Kind, Namespace: r.Namespace, Name: r.Name, Paths: r.Paths})
	}
	return out
}
