package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	"github.com/baton-gitops/baton/internal/envobject"
	"github.com/baton-gitops/baton/internal/githash"
)

// Timing of the Environment objects' writer and watcher.
const (
	// objectWriteGap spaces the writer's rounds: a burst of status changes
	// (a pass, then its health verdicts) becomes one write.
	objectWriteGap = 200 * time.Millisecond
	// objectRetry is the pause after a failed write or watch.
	objectRetry = 10 * time.Second
	// noCRDRetry is how often the agent looks again for the Environment
	// resource when the cluster does not serve it.
	noCRDRetry = time.Minute
)

// runObjects keeps the Environment objects of the synced environments in
// the agent's namespace until ctx ends: it mirrors the status board into
// the status of those this replica syncs (all while it leads, or those
// whose Lease it holds), and applies people's requests
// from their spec (suspend) and annotation (sync now) on every replica, so
// that a standby taking over knows them already. Without the Environment
// resource in the cluster it logs that once and looks again every minute;
// /api/status and the Events (on the inventory ConfigMaps) still work.
func (a *Agent) runObjects(ctx context.Context) {
	dyn, err := dynamic.NewForConfig(a.rest)
	if err != nil {
		a.log.Error("environment objects", "error", err.Error())
		return
	}
	client := envobject.NewClient(dyn, a.cfg.Agent.Namespace)
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.watchObjects(ctx, client)
	}()
	w := &objectWriter{client: client, board: a.board, log: a.log, written: map[string]string{},
		ensured: map[string]int64{}, conds: map[string][]metav1.Condition{}}
	w.run(ctx)
	<-done
}

// watchObjects applies the objects' spec and sync requests as they change.
func (a *Agent) watchObjects(ctx context.Context, client *envobject.Client) {
	warned := false
	for {
		err := client.Watch(ctx, func(e *envobject.Environment) {
			a.SetControl(ctx, e.Name, Control{Suspend: e.Spec.Suspend, By: e.Spec.SuspendedBy, Reason: e.Spec.SuspendReason,
				Generation: e.Generation, RequestedAt: e.Annotations[envobject.AnnotationRequestedAt],
				LastHandled: e.Status.LastHandledRequestedAt})
		})
		if ctx.Err() != nil {
			return
		}
		wait := objectRetry
		if errors.Is(err, envobject.ErrNoCRD) {
			if !warned {
				a.log.Info("no Environment resource in the cluster: suspend and sync requests come from baton.yaml only; install manifests/environment-crd.yaml",
					"namespace", client.Namespace())
				warned = true
			}
			wait = noCRDRetry
		} else if err != nil {
			a.log.Warn("watch environment objects", "namespace", client.Namespace(), "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// objectWriter mirrors the status board into the Environment objects'
// status. Only its own goroutine uses its fields.
type objectWriter struct {
	client *envobject.Client
	board  *statusBoard
	log    interface {
		Info(string, ...any)
		Warn(string, ...any)
	}
	// written is the status last written per environment (JSON), so that
	// an unchanged status is not written again.
	written map[string]string
	// ensured holds the generation of each object known to exist.
	ensured map[string]int64
	// conds are the conditions last written, whose transition times carry
	// over.
	conds map[string][]metav1.Condition
	// noCRD is set while the cluster has no Environment resource.
	noCRD bool
}

func (w *objectWriter) run(ctx context.Context) {
	for {
		retry := w.writeAll(ctx)
		var after <-chan time.Time
		if retry > 0 {
			after = time.After(retry)
		}
		select {
		case <-ctx.Done():
			return
		case <-w.board.changed:
		case <-after:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(objectWriteGap):
		}
	}
}

// writeAll writes every environment's status that changed, and returns
// when to try again after a failure (zero: at the next change).
func (w *objectWriter) writeAll(ctx context.Context) time.Duration {
	snap := w.board.snapshot()
	if snap.Role == RoleStandby {
		return 0
	}
	var retry time.Duration
	for _, e := range snap.Environments {
		if !w.board.syncs(e.Name) {
			continue // another replica syncs it, and writes its object
		}
		err := w.write(ctx, snap.Identity, e)
		switch {
		case err == nil:
			if w.noCRD {
				w.log.Info("environment objects: the Environment resource is served; writing status", "namespace", w.client.Namespace())
				w.noCRD = false
			}
		case errors.Is(err, envobject.ErrNoCRD):
			if !w.noCRD {
				w.log.Info("environment objects: the cluster has no Environment resource; status is at /api/status only (install manifests/environment-crd.yaml)",
					"namespace", w.client.Namespace())
				w.noCRD = true
			}
			return noCRDRetry
		default:
			if ctx.Err() != nil {
				return 0
			}
			w.log.Warn("environment objects", "environment", e.Name, "error", err.Error())
			delete(w.ensured, e.Name)
			retry = objectRetry
		}
	}
	return retry
}

func (w *objectWriter) write(ctx context.Context, identity string, e EnvironmentStatus) error {
	gen, ok := w.ensured[e.Name]
	if !ok {
		if err := w.client.Ensure(ctx, e.Name); err != nil {
			return err
		}
		obj, err := w.client.Get(ctx, e.Name)
		if err != nil {
			return err
		}
		gen = obj.Generation
		w.ensured[e.Name] = gen
		if _, seen := w.conds[e.Name]; !seen {
			w.conds[e.Name] = obj.Status.Conditions
		}
	}
	c, handled := w.board.controlOf(e.Name)
	if c.Generation > gen {
		gen = c.Generation
	}
	st := ObjectStatus(identity, e, handled)
	st.Conditions = append([]metav1.Condition(nil), w.conds[e.Name]...)
	envobject.SetConditions(&st, gen, metav1.Now())
	key, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if w.written[e.Name] == string(key) {
		return nil
	}
	if err := w.client.ApplyStatus(ctx, e.Name, st); err != nil {
		return err
	}
	w.written[e.Name], w.conds[e.Name] = string(key), st.Conditions
	return nil
}

// ObjectStatus is an environment's status as its Environment object
// carries it (conditions aside: see envobject.SetConditions). handled is
// the last sync request acted on. Pure.
func ObjectStatus(identity string, e EnvironmentStatus, handled string) envobject.Status {
	st := envobject.Status{Agent: identity, Pipeline: e.Pipeline, Repository: e.Repository, Branch: e.Branch, Path: e.Path,
		Head: objectRevision(e.Head), Synced: objectRevision(e.Synced), SourceError: e.SourceError,
		Drifted: e.Drifted, DriftCount: len(e.Drifted), LastHandledRequestedAt: handled}
	if e.Soak.Duration > 0 {
		st.Soak = e.Soak.String()
	}
	if e.Synced != nil {
		st.Revision = githash.Short(e.Synced.Commit)
	}
	st.SyncedAt = metaTime(e.SyncedAt)
	if l := e.LastSync; l != nil {
		st.LastSync = &envobject.Sync{Time: metav1.NewTime(l.Time), Revision: l.Revision, Result: l.Result, Error: l.Error,
			Duration: l.Duration.Round(time.Millisecond).String(), Counts: l.Counts}
	}
	st.Health = envobject.Health{Status: e.Health.Status, Cause: e.Health.Cause, Message: e.Health.Message,
		Since: metaTime(e.Health.Since), Revision: e.Health.Revision}
	if e.Suspended {
		source := "spec"
		if e.SuspendReason == configSuspendReason {
			source = "config"
		}
		st.Suspended = &envobject.Suspension{By: e.SuspendedBy, Reason: e.SuspendReason, Since: metaTime(e.SuspendedSince), Source: source}
	}
	var summary []string
	for _, p := range e.Promotions {
		st.Promotions = append(st.Promotions, envobject.Promotion{To: p.To, Policy: p.Policy, Revision: p.Revision,
			Outcome: p.Outcome, Reason: p.Reason, Detail: p.Detail, Commit: p.Commit, PullRequestURL: p.PullRequestURL,
			Time: metaTime(p.Time)})
		if p.Outcome != "" {
			s := fmt.Sprintf("%s: %s", p.To, p.Outcome)
			if p.Reason != "" && p.Reason != p.Outcome {
				s += " (" + p.Reason + ")"
			}
			summary = append(summary, s)
		}
	}
	st.Promotion = strings.Join(summary, "; ")
	return st
}

func objectRevision(r *RevisionInfo) *envobject.Revision {
	if r == nil {
		return nil
	}
	return &envobject.Revision{Commit: r.Commit, Subject: r.Subject, Time: metav1.NewTime(r.Time)}
}

func metaTime(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	mt := metav1.NewTime(t)
	return &mt
}

// StatusOfObject reads an environment's status back from its Environment
// object (as `baton status` does for agents it reaches only through their
// cluster): the inverse of ObjectStatus.
func StatusOfObject(e envobject.Environment) EnvironmentStatus {
	st := e.Status
	out := EnvironmentStatus{Name: e.Name, Pipeline: st.Pipeline, Repository: st.Repository, Branch: st.Branch, Path: st.Path,
		Head: revisionOfObject(st.Head), Synced: revisionOfObject(st.Synced), SourceError: st.SourceError,
		SyncedAt: timeOf(st.SyncedAt), Drifted: st.Drifted}
	if d, err := time.ParseDuration(st.Soak); err == nil {
		out.Soak.Duration = d
	}
	if l := st.LastSync; l != nil {
		d, _ := time.ParseDuration(l.Duration)
		out.LastSync = &SyncInfo{Time: l.Time.Time, Revision: l.Revision, Result: l.Result, Error: l.Error, Counts: l.Counts}
		out.LastSync.Duration.Duration = d
	}
	out.Health = HealthInfo{Status: st.Health.Status, Cause: st.Health.Cause, Message: st.Health.Message,
		Since: timeOf(st.Health.Since), Revision: st.Health.Revision}
	if s := st.Suspended; s != nil {
		out.Suspended, out.SuspendedBy, out.SuspendReason, out.SuspendedSince = true, s.By, s.Reason, timeOf(s.Since)
	} else if e.Spec.Suspend {
		// Asked for, not yet acknowledged by the agent.
		out.Suspended, out.SuspendedBy, out.SuspendReason = true, e.Spec.SuspendedBy, e.Spec.SuspendReason
	}
	for _, p := range st.Promotions {
		out.Promotions = append(out.Promotions, PromotionInfo{To: p.To, Policy: p.Policy, Revision: p.Revision,
			Outcome: p.Outcome, Reason: p.Reason, Detail: p.Detail, Commit: p.Commit, PullRequestURL: p.PullRequestURL,
			Time: timeOf(p.Time)})
	}
	return out
}

func revisionOfObject(r *envobject.Revision) *RevisionInfo {
	if r == nil {
		return nil
	}
	return &RevisionInfo{Commit: r.Commit, Subject: r.Subject, Time: r.Time.Time}
}

func timeOf(t *metav1.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.Time
}
