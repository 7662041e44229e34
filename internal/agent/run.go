package agent

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// shutdownGrace bounds how long in-flight HTTP requests may take once the
// agent stops.
const shutdownGrace = 5 * time.Second

// Run serves HTTP and runs one loop per synced environment and one poller
// per repository: all of them with leader election off, or, with it on,
// the loops of the environments whose Lease this replica holds (share) and
// the pollers of their repositories. It blocks until ctx ends (SIGTERM),
// then stops in this order: the loops (an apply in flight is abandoned
// safely: the inventory names a revision only after a complete apply and
// records ahead what an apply may create), the Leases (released, so that
// the other replicas take over at once instead of after the lease
// duration), the HTTP server. It returns nil after a clean stop, or the
// error that kept it from running.
//
// Run may be called once.
func (a *Agent) Run(ctx context.Context) error {
	defer a.close()
	// Run's own cancel stops the loops and the election when the HTTP
	// server fails, not only when the caller's ctx ends.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	serveErr, shutdown, err := a.serve(ctx)
	if err != nil {
		return err
	}
	defer shutdown()
	a.runCtx = ctx
	a.log.Info("agent started", "identity", a.identity,
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
			runErr <- a.share(ctx)
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

// lead runs every loop and watcher until ctx ends: the agent with leader
// election off, a single replica that syncs every environment.
func (a *Agent) lead(ctx context.Context) {
	a.board.setRole(RoleSingle)
	a.recorder.LeaderChanged(true)
	defer a.recorder.LeaderChanged(false)
	var wg sync.WaitGroup
	for _, l := range a.loops {
		// Before any watcher polls: its first result must wake the loop.
		l.newLeadership()
		wg.Go(func() { l.run(ctx) })
	}
	for _, w := range a.watchers {
		wg.Go(func() { w.run(ctx) })
	}
	if a.previewer != nil {
		wg.Go(func() { _ = a.previewer.Run(ctx) })
	}
	wg.Wait()
}
