package agent

import (
	"context"
	"fmt"
	"sync"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

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
	cs, err := kubernetes.NewForConfig(a.rest)
	if err != nil {
		return fmt.Errorf("leases client: %w", err)
	}
	guard, err := a.legacyGuard(cs)
	if err != nil {
		return err
	}
	m, err := lease.New(lease.Options{Client: cs.CoordinationV1(), Namespace: a.cfg.Agent.Namespace,
		Group: le.LeaseName, Identity: a.identity, Units: a.cfg.Sync,
		LeaseDuration: le.LeaseDuration.Duration, RenewDeadline: le.RenewDeadline.Duration,
		RetryPeriod: le.RetryPeriod.Duration, Worker: (*shardWorker)(a), Logger: a.log,
		MayAcquire: func() bool { return a.mayAcquire(guard) }})
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
			OnStartedLeading: func(context.Context) {},
			OnStoppedLeading: func() {},
			OnNewLeader:      func(identity string) { a.board.setLeader(identity) },
		},
	})
	if err != nil {
		return nil, fmt.Errorf("leader election: %w", err)
	}
	return g, nil
}

// mayAcquire says whether this replica may take environments: not while
// the old Lease is held by a replica that is not one of the sharing
// replicas (an agent of the old kind, which syncs everything).
func (a *Agent) mayAcquire(guard *leaderelection.LeaderElector) bool {
	holder := guard.GetLeader()
	if holder == "" || holder == a.identity || guard.IsLeader() {
		return true
	}
	return a.shards.IsMember(holder)
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
