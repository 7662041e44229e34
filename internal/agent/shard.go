package agent

import (
	"context"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/utils/ptr"

	"github.com/baton-gitops/baton/internal/lease"
)

// share runs the agent with its environments spread over the replicas
// (leader election on): each environment is synced by the replica holding
// its Lease (internal/lease), and each replica aims at its fair share.
// "Leading" an environment means holding its Lease; a replica holding
// none stands by. It returns when ctx ends and every Lease is released.
//
// The agent's Lease of old (agent.leaderElection.leaseName, one leader
// for every environment) is still campaigned for, with no work attached:
// so that during an upgrade an agent of the old kind never leads while
// replicas of this kind sync, and replicas of this kind take no
// environment while an agent of the old kind leads.
func (a *Agent) share(ctx context.Context) error {
	le := a.cfg.Agent.LeaderElection
	lc := rest.CopyConfig(a.rest)
	if lc.QPS >= 0 {
		// Renewals must not queue behind each other: one per held
		// environment every renewDeadline/3, twice over for the retries.
		lc.QPS = max(lc.QPS, float32(2*3*len(a.cfg.Sync)/max(1, int(le.RenewDeadline.Seconds()))))
		lc.Burst = max(lc.Burst, 2*int(lc.QPS))
	}
	cs, err := kubernetes.NewForConfig(lc)
	if err != nil {
		return fmt.Errorf("leases client: %w", err)
	}
	guard, err := a.legacyGuard(cs)
	if err != nil {
		return err
	}
	gate := &legacyGate{a: a, leases: cs.CoordinationV1().Leases(a.cfg.Agent.Namespace), name: le.LeaseName}
	m, err := lease.New(lease.Options{Client: cs.CoordinationV1(), Namespace: a.cfg.Agent.Namespace,
		Group: le.LeaseName, Identity: a.identity, Units: a.cfg.Sync,
		LeaseDuration: le.LeaseDuration.Duration, RenewDeadline: le.RenewDeadline.Duration,
		RetryPeriod: le.RetryPeriod.Duration, Worker: (*shardWorker)(a), Logger: a.log,
		MayAcquire: func() bool { return gate.mayAcquire(ctx) }})
	if err != nil {
		return err
	}
	a.shards = m
	var wg sync.WaitGroup
	guardCtx, stopGuard := context.WithCancel(context.WithoutCancel(ctx))
	defer func() { stopGuard(); wg.Wait() }()
	wg.Go(func() {
		for guardCtx.Err() == nil {
			guard.Run(guardCtx)
		}
	})
	if a.relay != nil {
		// Every replica may sync some environment of any repository: each
		// follows the webhooks the others receive.
		wg.Go(func() { a.relay.follow(ctx, a.watchers) })
	}
	return m.Run(ctx)
}

// legacyGuard campaigns for the Lease a single leader used to hold.
func (a *Agent) legacyGuard(cs kubernetes.Interface) (*leaderelection.LeaderElector, error) {
	le := a.cfg.Agent.LeaderElection
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, a.cfg.Agent.Namespace, le.LeaseName,
		cs.CoreV1(), cs.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: a.identity})
	if err != nil {
		return nil, fmt.Errorf("leader election lock: %w", err)
	}
	g, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: lock, Name: le.LeaseName, LeaseDuration: le.LeaseDuration.Duration, RenewDeadline: le.RenewDeadline.Duration,
		RetryPeriod: le.RetryPeriod.Duration, ReleaseOnCancel: true,
		Callbacks: leaderelection.LeaderCallbacks{
			// The holder of the old Lease runs the pull request previews:
			// exactly one replica, whichever environments it syncs.
			OnStartedLeading: a.runPreviews,
			OnStoppedLeading: func() {},
			OnNewLeader:      func(identity string) { a.board.setLeader(identity) },
		},
	})
	if err != nil {
		return nil, fmt.Errorf("leader election: %w", err)
	}
	return g, nil
}

// runPreviews runs the previewer, if any, until ctx ends; one run at a
// time (client-go starts a leadership's callback before the last one's
// returned).
func (a *Agent) runPreviews(ctx context.Context) {
	if a.previewer == nil {
		return
	}
	a.previewMu.Lock()
	defer a.previewMu.Unlock()
	if ctx.Err() == nil {
		_ = a.previewer.Run(ctx)
	}
}

// legacyGate reads the old Lease before each round of the lease Manager:
// this replica may take environments unless an agent of the old kind (a
// holder that is not one of the sharing replicas) holds it and renews it.
// Renewals are judged by this replica's clock, as client-go does: the
// holder's clock is never compared with ours.
type legacyGate struct {
	a      *Agent
	leases coordinationv1client.LeaseInterface
	name   string
	// Only the lease Manager's goroutine calls mayAcquire: no lock.
	holder, renewed string
	seenAt          time.Time
	waiting         bool // logged that the old agent holds it
}

func (g *legacyGate) mayAcquire(ctx context.Context) bool {
	l, err := g.leases.Get(ctx, g.name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return true
	case err != nil:
		return false // not knowing, take nothing new this round
	}
	holder := ptr.Deref(l.Spec.HolderIdentity, "")
	renewed := ""
	if l.Spec.RenewTime != nil {
		renewed = l.Spec.RenewTime.String()
	}
	now := time.Now()
	if holder != g.holder || renewed != g.renewed || g.seenAt.IsZero() {
		g.holder, g.renewed, g.seenAt = holder, renewed, now
	}
	d := time.Duration(ptr.Deref(l.Spec.LeaseDurationSeconds, 0)) * time.Second
	if holder == "" || holder == g.a.identity || g.a.shards.IsMember(holder) || now.After(g.seenAt.Add(d)) {
		g.waiting = false
		return true // free, ours, or expired: the old agent is gone
	}
	if !g.waiting {
		g.a.log.Info("an agent of the older, single-leader kind holds the Lease: taking no environment until it stops",
			"lease", g.name, "holder", holder)
		g.waiting = true
	}
	return false
}

// shardWorker starts and stops environment loops for the lease Manager.
type shardWorker Agent

// Start runs env's loop, and its repository's watcher, until ctx ends.
// The loop starts as a new leadership: it syncs as soon as the watcher,
// asked to poll now, offers the branch.
func (w *shardWorker) Start(ctx context.Context, env string) <-chan struct{} {
	a := (*Agent)(w)
	done := make(chan struct{})
	l := a.loop(env)
	if l == nil {
		close(done)
		return done
	}
	loopCtx, cancel := context.WithCancel(ctx)
	l.setTenure(cancel)
	a.holding(env, true)
	l.newLeadership()
	watcher := a.watcherOf(l)
	watcher.use(a.runCtx)
	watcher.poke()
	if at := a.board.pendingRequest(env); at != "" {
		go a.syncNow(loopCtx, l, at)
	}
	go func() {
		defer close(done)
		defer cancel()
		l.run(loopCtx)
		watcher.unuse()
		a.holding(env, false)
	}()
	return done
}

// Drain stops env's loop once the pass in hand (render and apply) is
// done; a health wait or monitor is cancelled: the next holder waits
// again.
func (w *shardWorker) Drain(env string) {
	if l := (*Agent)(w).loop(env); l != nil {
		go l.drain()
	}
}

// holding records that this replica syncs env, or no longer does.
func (a *Agent) holding(env string, held bool) {
	first, last := a.board.setHeld(env, held)
	if !held {
		a.parts.reconciler.ReleaseCacheOf(env)
		a.recorder.EnvironmentReleased(env)
	}
	switch {
	case first:
		a.recorder.LeaderChanged(true)
		a.log.Info("syncing environments", "identity", a.identity)
	case last:
		a.parts.reconciler.ReleaseCache()
		a.recorder.LeaderChanged(false)
		a.log.Info("syncing no environment: standing by", "identity", a.identity)
	}
}

func (a *Agent) loop(env string) *envLoop {
	for _, l := range a.loops {
		if l.env.Name == env {
			return l
		}
	}
	return nil
}

func (a *Agent) watcherOf(l *envLoop) *repoWatcher {
	for _, w := range a.watchers {
		for _, wl := range w.loops {
			if wl == l {
				return w
			}
		}
	}
	return nil
}
