package agent

import (
	"context"
	"time"

	"github.com/baton-gitops/baton/health"
	"github.com/baton-gitops/baton/internal/config"
	"github.com/baton-gitops/baton/internal/githash"
	"github.com/baton-gitops/baton/promote"
	"github.com/baton-gitops/baton/source"
)

// Promoter evaluates one pipeline edge: it checks the soak, the gates,
// holds and freezes, and pushes the promotion commit or opens a pull
// request. It decides; the agent only reports its source environment's
// state. The agent calls it as leader after every sync, every health change
// and when a blocked promotion said when to look again; `baton promote`
// calls the same implementation (see NewPipelinePromoter).
type Promoter interface {
	Promote(ctx context.Context, req PromotionRequest) (PromotionResult, error)
}

// PromotionRequest is an edge and the state of its source environment, as
// plain data.
type PromotionRequest struct {
	// From and To are environment names of a configured edge.
	From, To string
	// Revision is From's synced revision; nil when it has not synced.
	Revision *source.Revision
	// SyncedAt is when Revision was applied.
	SyncedAt time.Time
	// Healthy reports whether From is healthy now; HealthySince is since
	// when (zero when unhealthy), Reason the cause when it is not.
	Healthy      bool
	HealthySince time.Time
	Reason       string
	// Frozen stops promotions out of From (a suspended environment);
	// FrozenReason says why.
	Frozen       bool
	FrozenReason string
	// Override skips the soak and metric gates (`baton promote
	// --override-gates`) and is recorded in the promotion commit; nil for
	// the agent, which never overrides.
	Override *promote.Override
}

// PromotionResult is what an evaluation did.
type PromotionResult struct {
	// Outcome is one of the Promotion* constants.
	Outcome string
	// Reason names the gate, hold or freeze that blocked.
	Reason string
	// Detail says it in words (a gate's measurement, a freeze's cause).
	Detail string
	// Commit is the promotion commit pushed or proposed.
	Commit string
	// PullRequestURL links the pull request (or, without a forge, the page
	// to open one).
	PullRequestURL string
	// Retry, when not zero, is when a blocked promotion may pass (the rest
	// of the soak): the agent evaluates again then.
	Retry time.Duration
	// Events are audit records this evaluation produced (promoted, pull
	// request opened, merged, frozen, ...), each reported once; the agent
	// logs them.
	Events []PromotionEvent
}

// PromotionEvent is an audit record: who did what to which revisions.
type PromotionEvent struct {
	// Kind is "promoted", "pr-opened", "pr-updated", "merged", "held",
	// "frozen", "unfrozen" or "reverted".
	Kind string
	// Who is the person or bot behind it, when known.
	Who string
	// SourceCommit and TargetCommit are the revisions concerned.
	SourceCommit, TargetCommit string
	// PullRequest is the pull request number, or zero.
	PullRequest int
	Time        time.Time
	Message     string
}

// Reverter reverts a promotion that left its target environment degraded,
// along an edge with revertOnUnhealthy. The agent calls it, as leader, for
// the environment it syncs that is the edge's target; PipelinePromoter is
// one.
type Reverter interface {
	// Revert is given the target's state (req.To synced at req.Revision,
	// unhealthy). A result with an empty Outcome means nothing was to be
	// reverted.
	Revert(ctx context.Context, req PromotionRequest) (PromotionResult, error)
}

// promote evaluates every pipeline edge out of the environment, reverts a
// promotion into it that left it degraded (edges with revertOnUnhealthy),
// and returns a channel that fires when an edge asked to be evaluated
// again, or nil.
func (l *envLoop) promote(ctx context.Context, st *loopState) <-chan time.Time {
	if l.promoter == nil || (len(l.edges) == 0 && len(l.reverts) == 0) || st.synced == nil {
		return nil
	}
	rev := st.synced
	if latest, _ := l.current(); latest == nil || latest.Commit != rev.Commit {
		return nil // a newer revision is on its way: evaluate once it is synced
	}
	h := l.currentHealth()
	if h.revision != rev.Commit {
		return nil // no verdict on this revision yet
	}
	l.revert(ctx, st, h)
	req := PromotionRequest{From: l.env.Name, Revision: rev, SyncedAt: st.syncedAt,
		Healthy: h.report.Overall == health.Healthy, Reason: string(h.report.Cause)}
	if req.Healthy {
		req.HealthySince = h.report.Since
	} else if req.Reason == "" {
		req.Reason = string(h.report.Overall)
	}
	if l.suspended() {
		req.Frozen, req.FrozenReason = true, "the environment is suspended"
	}
	var retry time.Duration
	for _, e := range l.edges {
		if ctx.Err() != nil {
			return nil
		}
		req.To = e.To
		started := l.clock.Now()
		res, err := l.promoter.Promote(ctx, req)
		l.recordPromotion(e, rev, res, err, l.clock.Now().Sub(started))
		if err == nil && res.Retry > 0 && (retry == 0 || res.Retry < retry) {
			retry = res.Retry
		}
	}
	if retry == 0 {
		return nil
	}
	return l.clock.After(retry)
}

// revert asks the promoter to revert the promotions into the environment
// that left it degraded. Only a settled verdict counts: Progressing may
// still turn healthy.
func (l *envLoop) revert(ctx context.Context, st *loopState, h healthSeen) {
	rv, ok := l.promoter.(Reverter)
	if !ok || len(l.reverts) == 0 || h.report.Overall != health.Degraded || l.env.Suspend {
		return
	}
	reason := string(h.report.Cause)
	if reason == "" {
		reason = string(h.report.Overall)
	}
	for _, e := range l.reverts {
		if ctx.Err() != nil {
			return
		}
		started := l.clock.Now()
		res, err := rv.Revert(ctx, PromotionRequest{From: e.From, To: l.env.Name, Revision: st.synced,
			SyncedAt: st.syncedAt, Reason: reason})
		if err == nil && res.Outcome == "" {
			continue // nothing to revert along this edge
		}
		l.recordRevert(e, st.synced, res, err, l.clock.Now().Sub(started))
	}
}

// recordRevert records a revert: status, log and, once per revert made,
// the recorder (Outcome PromotionReverted).
func (l *envLoop) recordRevert(e config.Edge, rev *source.Revision, res PromotionResult, err error, d time.Duration) {
	info := PromotionInfo{From: e.From, To: e.To, Policy: e.Policy, Revision: rev.Commit, Outcome: res.Outcome,
		Reason: res.Reason, Detail: res.Detail, Commit: res.Commit, PullRequestURL: res.PullRequestURL, Time: l.clock.Now()}
	if err != nil {
		info.Outcome, info.Reason, info.Detail = PromotionFailed, source.KindName(err), err.Error()
	}
	l.board.update(l.env.Name, func(s *EnvironmentStatus) {
		for i := range s.Reverts {
			if s.Reverts[i].From == e.From {
				s.Reverts[i] = info
				return
			}
		}
		s.Reverts = append(s.Reverts, info)
	})
	attrs := []any{"from", e.From, "to", e.To, "revision", githash.Short(rev.Commit), "outcome", info.Outcome,
		"duration", d.Round(time.Millisecond).String()}
	if info.Detail != "" {
		attrs = append(attrs, "detail", info.Detail)
	}
	if info.PullRequestURL != "" {
		attrs = append(attrs, "pullRequest", info.PullRequestURL)
	}
	if err != nil {
		l.log.Error("revert", attrs...)
		return
	}
	made := false
	for _, ev := range res.Events {
		made = made || ev.Kind == string(promote.EventReverted)
		l.log.Info("promotion event", "kind", ev.Kind, "from", e.From, "to", e.To, "who", ev.Who,
			"sourceCommit", githash.Short(ev.SourceCommit), "targetCommit", githash.Short(ev.TargetCommit),
			"pullRequest", ev.PullRequest, "message", ev.Message)
	}
	if !made {
		l.log.Debug("revert", attrs...)
		return
	}
	l.log.Warn("revert", attrs...)
	l.recorder.PromotionDone(PromotionRecord{From: e.From, To: e.To, Pipeline: l.pipeline, Revision: rev.Commit, Outcome: PromotionReverted,
		Duration: d, Detail: res.Detail, PullRequestURL: res.PullRequestURL})
}

// recordPromotion records an evaluation: metrics, one log line, status.
// Evaluations that change nothing (the same outcome for the same revision)
// are logged at debug level only, since one runs after every pass.
func (l *envLoop) recordPromotion(e config.Edge, rev *source.Revision, res PromotionResult, err error, d time.Duration) {
	rec := PromotionRecord{From: l.env.Name, To: e.To, Pipeline: l.pipeline, Revision: rev.Commit, Outcome: res.Outcome, Reason: res.Reason, Duration: d,
		Detail: res.Detail, PullRequestURL: res.PullRequestURL, Events: res.Events}
	if err != nil {
		rec.Outcome, rec.Reason, rec.Detail = PromotionFailed, source.KindName(err), err.Error()
	}
	l.recorder.PromotionDone(rec)
	info := PromotionInfo{To: e.To, Policy: e.Policy, Revision: rev.Commit, Outcome: rec.Outcome, Reason: rec.Reason,
		Detail: res.Detail, Commit: res.Commit, PullRequestURL: res.PullRequestURL, Time: l.clock.Now()}
	if err != nil {
		info.Detail = err.Error()
	}
	var prev PromotionInfo
	l.board.update(l.env.Name, func(s *EnvironmentStatus) {
		for i := range s.Promotions {
			if s.Promotions[i].To == e.To {
				prev, s.Promotions[i] = s.Promotions[i], info
				return
			}
		}
		s.Promotions = append(s.Promotions, info)
	})

	attrs := []any{"from", l.env.Name, "to", e.To, "revision", githash.Short(rev.Commit), "outcome", rec.Outcome,
		"duration", d.Round(time.Millisecond).String()}
	if rec.Reason != "" {
		attrs = append(attrs, "reason", rec.Reason)
	}
	if info.Detail != "" {
		attrs = append(attrs, "detail", info.Detail)
	}
	if res.PullRequestURL != "" {
		attrs = append(attrs, "pullRequest", res.PullRequestURL)
	}
	for _, ev := range res.Events {
		l.log.Info("promotion event", "kind", ev.Kind, "from", l.env.Name, "to", e.To, "who", ev.Who,
			"sourceCommit", githash.Short(ev.SourceCommit), "targetCommit", githash.Short(ev.TargetCommit),
			"pullRequest", ev.PullRequest, "message", ev.Message)
	}
	switch {
	case err != nil:
		l.log.Error("promotion", attrs...)
	case prev.Revision == info.Revision && prev.Outcome == info.Outcome && prev.Reason == info.Reason && prev.Commit == info.Commit:
		l.log.Debug("promotion", attrs...)
	default:
		l.log.Info("promotion", attrs...)
	}
}
