package agent

import (
	"context"
	"time"

	"github.com/baton-gitops/baton/health"
	"github.com/baton-gitops/baton/internal/config"
	"github.com/baton-gitops/baton/internal/githash"
	"github.com/baton-gitops/baton/internal/workpool"
	"github.com/baton-gitops/baton/reconciler"
	"github.com/baton-gitops/baton/source"
)

// waitHealth waits for the objects of rev to become ready, within the
// environment's health timeout. A newer revision of the branch interrupts
// the wait (the report is then Cancelled) and is synced next.
func (l *envLoop) waitHealth(ctx context.Context, rev *source.Revision, refs []health.ObjectRef) health.Report {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-l.wake:
				if latest, _ := l.current(); latest != nil && latest.Commit != rev.Commit {
					signal(l.wake) // for the loop, which syncs it next
					cancel()
					return
				}
			}
		}
	}()
	if l.waits != nil {
		release, err := l.waits.Acquire(ctx, l.env.Name, workpool.Routine)
		if err != nil {
			return health.Report{Overall: health.Cancelled}
		}
		defer release()
	}
	started := l.clock.Now()
	report := l.checker.Wait(ctx, refs, health.WaitOptions{EvalOptions: evalOptions(l.env.Health), Timeout: l.env.Health.Timeout.Duration})
	if report.Overall == health.Cancelled {
		l.log.Info("health wait interrupted", "environment", l.env.Name, "revision", githash.Short(rev.Commit))
		return report
	}
	l.recordHealth(rev.Commit, report, l.clock.Now().Sub(started))
	return report
}

// evalOptions maps an environment's health settings (baton.yaml) onto the
// checker's judgement. A LoadBalancer Service's address is awaited only
// when the environment says "wait", as the configuration's default is skip.
func evalOptions(h config.Health) health.EvalOptions {
	o := health.EvalOptions{
		SkipLoadBalancer: h.LoadBalancers != config.LoadBalancersWait,
		RecentWindow:     h.RecentWindow.Duration,
	}
	if h.RestartThreshold != nil {
		o.RestartThreshold = *h.RestartThreshold
	}
	return o
}

// monitor follows the objects of rev after the wait, recording every
// change of verdict, until the returned stop function is called.
func (l *envLoop) monitor(ctx context.Context, rev *source.Revision, refs []health.ObjectRef, waited health.Report) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	overdue := waited.Overall == health.Degraded && waited.Cause == health.TimedOut
	go func() {
		defer close(done)
		err := l.checker.Monitor(ctx, refs, health.MonitorOptions{EvalOptions: evalOptions(l.env.Health)}, func(r health.Report) {
			switch {
			case r.Overall == health.Progressing && overdue:
				// Still not ready past the deadline: the timeout's verdict
				// stands (with what is pending now) rather than flapping back
				// to Progressing, until the objects become ready or fail.
				r.Overall, r.Cause, r.Since = health.Degraded, health.TimedOut, waited.Since
				r.Message = "still not ready after the timeout: " + r.Message
			case r.Overall == health.Healthy || r.Overall == health.Degraded:
				overdue = false
			}
			l.recordHealth(rev.Commit, r, 0)
		})
		if err != nil {
			l.log.Error("health monitor", "environment", l.env.Name, "error", err.Error())
		}
	}()
	return func() { cancel(); <-done }
}

// recordHealth keeps a verdict for promotion, the status board and the
// recorder (the last two only when the verdict or its cause changed).
func (l *envLoop) recordHealth(revision string, r health.Report, waited time.Duration) {
	l.mu.Lock()
	prev := l.health
	l.health = healthSeen{revision: revision, report: r}
	l.mu.Unlock()
	signal(l.healthWake)
	l.board.update(l.env.Name, func(s *EnvironmentStatus) {
		s.Health = HealthInfo{Status: string(r.Overall), Cause: string(r.Cause), Message: r.Message,
			Since: r.Since, Revision: revision}
	})
	if prev.revision == revision && prev.report.Overall == r.Overall && prev.report.Cause == r.Cause && waited == 0 {
		return
	}
	l.recorder.HealthChanged(HealthRecord{Environment: l.env.Name, Pipeline: l.pipeline, Revision: revision,
		Status: string(r.Overall), Cause: string(r.Cause), WaitDuration: waited, Message: r.Message})
	attrs := []any{"environment", l.env.Name, "revision", githash.Short(revision), "health", string(r.Overall)}
	if r.Cause != health.NoCause {
		attrs = append(attrs, "cause", string(r.Cause))
	}
	if r.Overall != health.Healthy && r.Message != "" {
		attrs = append(attrs, "message", r.Message)
	}
	if waited > 0 {
		attrs = append(attrs, "waited", waited.Round(time.Millisecond).String())
	}
	l.log.Info("health", attrs...)
}

// currentHealth returns the last verdict.
func (l *envLoop) currentHealth() healthSeen {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.health
}

// healthRefs lists the objects a pass left in the cluster: everything it
// applied or found in place, not what it pruned, skipped or failed on.
func healthRefs(res reconciler.Result) []health.ObjectRef {
	var refs []health.ObjectRef
	for _, c := range res.Changes {
		switch c.Action {
		case reconciler.ActionCreated, reconciler.ActionConfigured, reconciler.ActionUnchanged,
			reconciler.ActionRecreated, reconciler.ActionDrifted:
			r := c.Ref
			refs = append(refs, health.ObjectRef{Group: r.Group, Version: r.Version, Kind: r.Kind, Namespace: r.Namespace, Name: r.Name})
		}
	}
	return refs
}

func sameRefs(a, b []health.ObjectRef) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
