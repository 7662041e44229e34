package events

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/baton-gitops/baton/internal/agent"
	"github.com/baton-gitops/baton/internal/githash"
)

// The interface is the consumer's; this line keeps it satisfied.
var _ agent.Recorder = (*Recorder)(nil)

// maxMessage keeps an Event's message within what the API server accepts
// (1 KiB for events.k8s.io; kubectl shows one line best).
const maxMessage = 1000

// SyncDone records Synced for a new revision (or the first success after
// failures), SyncFailed when a pass fails, Drifted and Pruned when a pass
// found drift or deleted objects.
func (r *Recorder) SyncDone(rec agent.SyncRecord) {
	defer r.next(func(n agent.Recorder) { n.SyncDone(rec) })
	r.mu.Lock()
	st := r.env(rec.Environment)
	var out []event
	ann := annotations(rec.Environment, rec.Pipeline, rec.Revision, rec.Author)
	switch rec.Result {
	case agent.SyncFailed:
		reason, msg := ReasonSyncFailed, "sync failed"
		if rec.Revision != "" {
			msg = "sync of " + revBy(rec.Revision, rec.Author) + " failed"
		}
		if rec.Refused != "" {
			// Refused before anything was applied: the commit broke a rule
			// (scope, ownership, a limit); the environment keeps its last
			// good state.
			reason, msg = ReasonSyncRefused, "sync refused ("+rec.Refused+")"
			if rec.Revision != "" {
				msg = "sync of " + revBy(rec.Revision, rec.Author) + " refused (" + rec.Refused + ")"
			}
		}
		if rec.FailedStage != "" {
			msg += " at " + rec.FailedStage
		}
		if rec.Error != "" {
			msg += ": " + rec.Error
		}
		// Every failure is recorded: client-go's correlator counts repeats
		// of the same message on one Event.
		out = append(out, event{rec.Environment, corev1.EventTypeWarning, reason, msg, ann})
		st.failing = true
	case agent.SyncSucceeded:
		if rec.Revision != st.revision || st.failing {
			out = append(out, event{rec.Environment, corev1.EventTypeNormal, ReasonSynced,
				"synced " + revBy(rec.Revision, rec.Author) + ": " + counts(rec.Counts), ann})
		}
		st.revision, st.author, st.failing = rec.Revision, rec.Author, false
		if rec.Drifted > 0 {
			what := "corrected"
			if rec.DriftMode == "detect-only" {
				what = "detected, not corrected (detect-only)"
			}
			out = append(out, event{rec.Environment, corev1.EventTypeWarning, ReasonDrifted,
				fmt.Sprintf("%d objects drifted from %s: %s", rec.Drifted, revBy(rec.Revision, rec.Author), what), ann})
		}
		if rec.Pruned > 0 {
			out = append(out, event{rec.Environment, corev1.EventTypeNormal, ReasonPruned,
				fmt.Sprintf("pruned %d objects that left git at %s", rec.Pruned, revBy(rec.Revision, rec.Author)), ann})
		}
	}
	r.mu.Unlock()
	for _, e := range out {
		r.emit(e)
	}
}

// HealthChanged records HealthDegraded when an environment becomes
// degraded (or its cause changes) and Recovered when it is healthy again.
func (r *Recorder) HealthChanged(rec agent.HealthRecord) {
	defer r.next(func(n agent.Recorder) { n.HealthChanged(rec) })
	r.mu.Lock()
	st := r.env(rec.Environment)
	author := ""
	if rec.Revision == st.revision {
		author = st.author
	}
	prev := st.health
	key := rec.Status + "/" + rec.Cause + "/" + rec.Revision
	var out []event
	ann := annotations(rec.Environment, rec.Pipeline, rec.Revision, author)
	switch {
	case rec.Status == "Degraded" && prev != key:
		msg := revBy(rec.Revision, author) + " is degraded"
		if rec.Cause != "" {
			msg += " (" + rec.Cause + ")"
		}
		if rec.Message != "" {
			msg += ": " + rec.Message
		}
		out = append(out, event{rec.Environment, corev1.EventTypeWarning, ReasonHealthDegraded, msg, ann})
	case rec.Status == "Healthy" && st.degraded:
		// Degraded, then perhaps progressing with a fix, now healthy.
		out = append(out, event{rec.Environment, corev1.EventTypeNormal, ReasonRecovered,
			revBy(rec.Revision, author) + " is healthy again", ann})
	}
	switch rec.Status {
	case "Degraded":
		st.degraded = true
	case "Healthy":
		st.degraded = false
	}
	if rec.Status != "Cancelled" {
		st.health = key
	}
	r.mu.Unlock()
	for _, e := range out {
		r.emit(e)
	}
}

// PromotionDone records Promoted, PromotionFrozen, PromotionHeld and
// PromotionFailed on the source environment when the outcome (or the
// revision) changes. Blocked gates and up-to-date targets are routine and
// recorded nowhere but the log.
func (r *Recorder) PromotionDone(rec agent.PromotionRecord) {
	defer r.next(func(n agent.Recorder) { n.PromotionDone(rec) })
	r.mu.Lock()
	k := [2]string{rec.From, rec.To}
	changed := r.edges[k] != rec.Revision+"/"+rec.Outcome
	r.edges[k] = rec.Revision + "/" + rec.Outcome
	st := r.env(rec.From)
	author := ""
	if rec.Revision == st.revision {
		author = st.author
	}
	r.mu.Unlock()
	for _, ev := range rec.Events {
		if ev.Kind == "merged" {
			ann := annotations(rec.From, rec.Pipeline, ev.SourceCommit, "")
			ann[AnnotationTo] = rec.To
			r.emit(event{rec.From, corev1.EventTypeNormal, ReasonPromotionMerged, ev.Message, ann})
		}
	}
	if !changed {
		return
	}
	ann := annotations(rec.From, rec.Pipeline, rec.Revision, author)
	ann[AnnotationTo] = rec.To
	what := revBy(rec.Revision, author) + " from " + rec.From + " to " + rec.To + inPipeline(rec.Pipeline)
	detail := ""
	if rec.Detail != "" {
		detail = ": " + rec.Detail
	}
	var e event
	switch rec.Outcome {
	case agent.PromotionPushed:
		e = event{rec.From, corev1.EventTypeNormal, ReasonPromoted, "promoted " + what + ": pushed", ann}
	case agent.PromotionPullRequest:
		msg := "promoted " + what + ": pull request"
		if rec.PullRequestURL != "" {
			msg += " " + rec.PullRequestURL
		}
		e = event{rec.From, corev1.EventTypeNormal, ReasonPromoted, msg, ann}
	case agent.PromotionFrozen:
		e = event{rec.From, corev1.EventTypeWarning, ReasonPromotionFrozen, "promotion of " + what + " is frozen" + detail, ann}
	case agent.PromotionHeld:
		e = event{rec.From, corev1.EventTypeWarning, ReasonPromotionHeld, "promotion of " + what + " is held: it was reverted before" + detail, ann}
	case agent.PromotionFailed:
		e = event{rec.From, corev1.EventTypeWarning, ReasonPromotionFailed, "promotion of " + what + " failed" + detail, ann}
	case agent.PromotionReverted:
		// On the target: it is the environment that went unhealthy.
		msg := "reverted the promotion from " + rec.From + inPipeline(rec.Pipeline) + " that left " + rec.To + " unhealthy at " + githash.Short(rec.Revision)
		if rec.PullRequestURL != "" {
			msg += ": pull request " + rec.PullRequestURL
		}
		e = event{rec.To, corev1.EventTypeWarning, ReasonPromotionReverted, msg, annotations(rec.To, rec.Pipeline, rec.Revision, "")}
	default:
		return
	}
	r.emit(e)
}

// LeaderChanged forgets what was reported when this replica stops leading:
// the next leader reports from scratch, and so will this one if it leads
// again.
func (r *Recorder) LeaderChanged(leading bool) {
	defer r.next(func(n agent.Recorder) { n.LeaderChanged(leading) })
	if !leading {
		r.mu.Lock()
		r.envs = map[string]*envState{}
		r.edges = map[[2]string]string{}
		r.mu.Unlock()
	}
}

// EnvironmentReleased forgets what was reported about env: another
// replica syncs it now, and reports from scratch.
func (r *Recorder) EnvironmentReleased(env string) {
	defer r.next(func(n agent.Recorder) { n.EnvironmentReleased(env) })
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.envs, env)
	for k := range r.edges {
		if k[0] == env || k[1] == env {
			delete(r.edges, k)
		}
	}
}

func (r *Recorder) next(f func(agent.Recorder)) {
	if r.opts.Next != nil {
		f(r.opts.Next)
	}
}

// env returns an environment's state, creating it. Callers hold mu.
func (r *Recorder) env(name string) *envState {
	st, ok := r.envs[name]
	if !ok {
		st = &envState{}
		r.envs[name] = st
	}
	return st
}

func annotations(env, pipeline, revision, author string) map[string]string {
	ann := map[string]string{AnnotationEnvironment: env, AnnotationRevision: revision, AnnotationAuthor: author}
	if pipeline != "" {
		ann[AnnotationPipeline] = pipeline
	}
	return ann
}

// inPipeline names a promotion's pipeline in a message, " in pipeline
// shop", when the agent has several (the single form's is "default").
func inPipeline(pipeline string) string {
	if pipeline == "" || pipeline == "default" {
		return ""
	}
	return " in pipeline " + pipeline
}

// counts writes a pass's action counts in a stable order: "2 created,
// 5 unchanged".
func counts(c map[string]int) string {
	var parts []string
	for _, a := range []string{"created", "configured", "recreated", "deleted", "unchanged", "skipped", "drifted", "failed"} {
		if c[a] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c[a], a))
		}
	}
	if len(parts) == 0 {
		return "no objects"
	}
	return strings.Join(parts, ", ")
}

// revBy names a revision and, when known, its author: "1a2b3c4d5e6f by
// Jane <jane@example.com>".
func revBy(revision, author string) string {
	if author == "" {
		return githash.Short(revision)
	}
	return githash.Short(revision) + " by " + author
}
