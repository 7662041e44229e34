package agent

import "time"

// Recorder receives the agent's measurements. It is declared here, where it
// is used, so that the agent does not depend on Prometheus: the metrics
// package implements it. Every argument is plain data.
//
// Methods are called from the environments' loops, concurrently for
// different environments, and must not block: a slow recorder delays syncs.
type Recorder interface {
	// SyncDone records one sync pass of an environment: render, apply and
	// prune, whatever its outcome.
	SyncDone(SyncRecord)
	// HealthChanged records an environment's health verdict each time it
	// changes: after the wait that follows a sync, and whenever the monitor
	// that runs afterwards sees it change.
	HealthChanged(HealthRecord)
	// PromotionDone records one evaluation of a pipeline edge (the agent
	// evaluates after every sync and health change, so most say nothing
	// changed: same revision and outcome as before).
	PromotionDone(PromotionRecord)
	// LeaderChanged records whether this replica now leads (and so applies
	// and promotes) or stands by. With environments spread over replicas,
	// a replica leads while it syncs at least one environment.
	LeaderChanged(leading bool)
	// EnvironmentReleased records that this replica no longer syncs env:
	// its Lease went to another replica (or the agent stops). What
	// describes env's current state here is stale from now on.
	EnvironmentReleased(env string)
}

// Outcomes of a sync pass (SyncRecord.Result).
const (
	SyncSucceeded = "success"
	SyncFailed    = "failure"
	// SyncSuspended: the environment is suspended; nothing was applied.
	SyncSuspended = "suspended"
)

// Stages of a failed sync pass (SyncRecord.FailedStage), for an error-kind
// label.
const (
	StageSource = "source" // the branch has no good revision (fetch, signature)
	StageRender = "render" // Kustomize refused or failed
	StageApply  = "apply"  // the reconciler failed (apply, prune, inventory)
)

// SyncRecord is one sync pass.
type SyncRecord struct {
	// Environment is the environment's name; Pipeline its pipeline's,
	// empty when it is in none.
	Environment, Pipeline string
	// Revision is the commit synced (or attempted); empty when the branch
	// had no good revision yet.
	Revision string
	// CommitTime is the revision's committer time: now minus it is how long
	// a change took to reach the cluster. Zero when Revision is empty.
	CommitTime time.Time
	// PreviousRevision is the revision the cluster had before this pass,
	// as the inventory recorded it (in the cluster: it survives restarts
	// and leader changes); empty for a first sync or a failed pass. A
	// revision other than it is a deployment, even the first this agent
	// syncs.
	PreviousRevision string
	// Result is SyncSucceeded, SyncFailed or SyncSuspended.
	Result string
	// FailedStage is StageSource, StageRender or StageApply for a failure,
	// empty otherwise.
	FailedStage string
	// Duration is the whole pass; RenderDuration and ApplyDuration its parts.
	Duration, RenderDuration, ApplyDuration time.Duration
	// Objects is the number of rendered objects.
	Objects int
	// Counts counts the objects by what the pass did to them: "created",
	// "configured", "unchanged", "deleted", "recreated", "skipped",
	// "drifted", "failed" (see reconciler.Action).
	Counts map[string]int
	// Drifted is the number of objects found drifted (edited or deleted by
	// hand), corrected unless the environment is detect-only.
	Drifted int
	// Pruned is the number of objects deleted because they left git.
	Pruned int
	// Branch is the environment's branch; Interval its poll interval (a
	// working agent syncs at least this often); DriftMode its drift
	// setting, "correct" or "detect-only".
	Branch    string
	Interval  time.Duration
	DriftMode string
	// Author is the revision's author ("Name <email>"); Revert says the
	// revision is a revert commit (source.Revision.Reverts names a commit),
	// which undoes a failed change. Empty and false when Revision
	// is empty.
	Author string
	Revert bool
	// Error is a failure's message (for Events: metrics never use it as a
	// label); empty otherwise.
	Error string
	// Refused names the rule or limit that refused the revision as a whole
	// before anything was applied or pruned — a reconciler.Rule* ("namespace",
	// "cluster-kind", "protected", "ownership") or a render.Limit* ("file-size",
	// "objects", "aliases", "memory", "time"); empty for any other outcome.
	// The environment keeps its last good state.
	Refused string
}

// HealthRecord is an environment's health verdict.
type HealthRecord struct {
	// Environment is the environment's name; Pipeline its pipeline's,
	// empty when it is in none.
	Environment, Pipeline string
	// Revision is the synced revision the verdict is about.
	Revision string
	// Status is "Healthy", "Progressing", "Degraded", "Cancelled" or
	// "Unknown" (see health.Overall).
	Status string
	// Cause names why it is not healthy ("crashloop", "oomkilled",
	// "imagepull", ..., see health.Cause); empty when none was found.
	Cause string
	// WaitDuration is how long the wait after the sync took to reach this
	// verdict; zero for a change seen later by the monitor.
	WaitDuration time.Duration
	// Message says what is wrong in words (health.Report.Message), for
	// Events; empty when healthy.
	Message string
}

// Outcomes of a promotion attempt (PromotionRecord.Outcome).
const (
	// PromotionPushed: the promotion commit was pushed to the target branch.
	PromotionPushed = "pushed"
	// PromotionPullRequest: a pull request is open for it (opened, updated
	// or already current), or, without a forge, its branch was pushed.
	PromotionPullRequest = "pull-request"
	// PromotionUpToDate: the target already has the revision's content.
	PromotionUpToDate = "up-to-date"
	// PromotionBlocked: a gate (soak, a metric) has not passed; Reason
	// names it.
	PromotionBlocked = "blocked"
	// PromotionHeld: the content was reverted on the target before and is
	// not promoted again.
	PromotionHeld = "held"
	// PromotionFrozen: the source environment is unhealthy or suspended;
	// Reason says which.
	PromotionFrozen = "frozen"
	// PromotionFailed: an error stopped it (git, forge, Prometheus).
	PromotionFailed = "failure"
	// PromotionReverted: a promotion along the edge left its target
	// unhealthy and was reverted (the revert pushed, or its pull request
	// opened), for an edge with revertOnUnhealthy. Recorded once per
	// revert, by the agent that syncs the target.
	PromotionReverted = "reverted"
)

// PromotionRecord is one evaluation of a pipeline edge.
type PromotionRecord struct {
	// From and To are the environments of the pipeline edge; Pipeline
	// names the pipeline it is in.
	From, To, Pipeline string
	// Revision is the source environment's commit being promoted.
	Revision string
	// Outcome is one of the Promotion* constants.
	Outcome string
	// Reason names the gate that blocked ("soak", a metric gate's name),
	// the cause of a freeze, or the error kind of a failure; empty
	// otherwise.
	Reason string
	// Duration is the time the evaluation took (gates, commit, push, forge).
	Duration time.Duration
	// Detail says it in words (a gate's measurement, a freeze's cause, an
	// error), for Events; PullRequestURL links the pull request, if any.
	Detail, PullRequestURL string
	// Events are the audit events of the evaluation (promoted, merged,
	// held, ...), each reported once, across restarts for merged ones.
	Events []PromotionEvent
}

// NopRecorder records nothing. It is the Recorder used when none is given.
type NopRecorder struct{}

// SyncDone does nothing.
func (NopRecorder) SyncDone(SyncRecord) {}

// HealthChanged does nothing.
func (NopRecorder) HealthChanged(HealthRecord) {}

// PromotionDone does nothing.
func (NopRecorder) PromotionDone(PromotionRecord) {}

// LeaderChanged does nothing.
func (NopRecorder) LeaderChanged(bool) {}

// EnvironmentReleased does nothing.
func (NopRecorder) EnvironmentReleased(string) {}
