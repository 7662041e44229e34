package agent

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// shutdownGrace bounds how long in-flight HTTP requests may take once the
// agent stops.
const shutdownGrace = 5 * time.Second

// Run serves HTTP, takes part in the leader election and, while leading,
// runs one loop per synced environment and one poller per repository. It
// blocks until ctx ends (SIGTERM), then stops in this order: the loops (an
// apply in flight is abandoned safely: the inventory names a revision only
// after a complete apply and records ahead what an apply may create), the Lease (released, so a standby takes over at once
// instead of after the lease duration), the HTTP server. It returns nil
// after a clean stop, or the error that kept it from running.
//
// Run may be called once.
func (a *Agent) Run(ctx context.Context) error {
	defer a.close()
	// Run's own cancel stops the loops and the election when the HTTP
	// server fails, not only when the caller's ctx ends.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ln := a.listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", a.cfg.Listen.HTTP); err != nil {
			return fmt.Errorf("listen.http: %w", err)
		}
	}
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	a.log.Info("agent started", "identity", a.identity, "listen", ln.Addr().String(),
		"environments", len(a.cfg.Sync), "leaderElection", a.cfg.Agent.LeaderElection.IsEnabled(),
		"workers", a.parts.syncs.Size(), "healthWaits", a.parts.waits.Size())
	// The Environment objects: status while leading, requests always.
	objectsDone := make(chan struct{})
	go func() { defer close(objectsDone); a.runObjects(ctx) }()
	defer func() { cancel(); <-objectsDone }()

	if a.relay != nil {
		relayDone := make(chan struct{})
		go func() { defer close(relayDone); a.relay.run(ctx) }()
		defer func() { cancel(); <-relayDone }()
	}
	runErr := make(chan error, 1)
	go func() {
		if a.cfg.Agent.LeaderElection.IsEnabled() {
			runErr <- a.elect(ctx)
		} else {
			a.lead(ctx)
			runErr <- nil
		}
	}()
	select {
	case err := <-serveErr:
		cancel()
		<-runErr
		return fmt.Errorf("http server: %w", err)
	case err := <-runErr:
		if err != nil {
			return err
		}
	}
	a.log.Info("agent stopped", "identity", a.identity)
	return nil
}

// elect campaigns for the Lease until ctx ends, leading whenever it holds
// it. The election runs on its own context, cancelled only after every
// loop stopped: with ReleaseOnCancel, cancelling it gives the Lease away,
// which must not happen while an apply may still be running.
func (a *Agent) elect(ctx context.Context) error {
	le := a.cfg.Agent.LeaderElection
	cs, err := kubernetes.NewForConfig(a.rest)
	if err != nil {
		return fmt.Errorf("leader election client: %w", err)
	}
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, a.cfg.Agent.Namespace, le.LeaseName,
		cs.CoreV1(), cs.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: a.identity})
	if err != nil {
		return fmt.Errorf("leader election lock: %w", err)
	}
	electCtx, stopElection := context.WithCancel(context.WithoutCancel(ctx))
	defer stopElection()
	go func() {
		<-ctx.Done()
		a.waitWork()
		stopElection()
	}()
	for electCtx.Err() == nil {
		elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:            lock,
			Name:            le.LeaseName,
			LeaseDuration:   le.LeaseDuration.Duration,
			RenewDeadline:   le.RenewDeadline.Duration,
			RetryPeriod:     le.RetryPeriod.Duration,
			ReleaseOnCancel: true,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(leadCtx context.Context) {
					// Leading ends when the Lease is lost or when the agent stops.
					workCtx, cancel := context.WithCancel(leadCtx)
					defer cancel()
					stop := context.AfterFunc(ctx, cancel)
					defer stop()
					a.lead(workCtx)
				},
				OnStoppedLeading: func() {
					// Do not campaign again before the last leadership's
					// loops have stopped.
					a.waitWork()
				},
				OnNewLeader: func(identity string) {
					a.board.setLeader(identity)
					if identity != a.identity {
						a.log.Info("standing by", "leader", identity)
					}
				},
			},
		})
		if err != nil {
			return fmt.Errorf("leader election: %w", err)
		}
		elector.Run(electCtx)
	}
	return nil
}

// lead runs the watchers and loops until ctx ends. Leaderships never
// overlap: a new one waits until the previous one's loops stopped.
func (a *Agent) lead(ctx context.Context) {
	a.leadMu.Lock()
	defer a.leadMu.Unlock()
	if ctx.Err() != nil {
		return
	}
	role := RoleLeader
	if !a.cfg.Agent.LeaderElection.IsEnabled() {
		role = RoleSingle
	}
	a.board.setRole(role)
	a.recorder.LeaderChanged(true)
	a.log.Info("leading", "identity", a.identity, "role", role)
	defer func() {
		// A standby applies nothing: its watches would only cost.
		a.parts.reconciler.ReleaseCache()
		a.board.setRole(RoleStandby)
		a.recorder.LeaderChanged(false)
		a.log.Info("stopped leading", "identity", a.identity)
	}()

	var wg sync.WaitGroup
	if a.relay != nil {
		a.relay.leading.Store(true)
		defer a.relay.leading.Store(false)
		wg.Go(func() { a.relay.follow(ctx, a.watchers) })
	}
	for _, l := range a.loops {
		// Before any watcher polls: its first result must wake the loop.
		l.newLeadership()
		wg.Go(func() { l.run(ctx) })
	}
	for _, w := range a.watchers {
		wg.Go(func() { w.run(ctx) })
	}
	wg.Wait()
}

// waitWork waits until no leadership work runs. Called once ctx has
// ended, it returns when every loop has stopped, and no new work can start
// (lead checks ctx under the same lock).
func (a *Agent) waitWork() {
	a.leadMu.Lock()
	defer a.leadMu.Unlock()
}
