package promote

import "time"

// Result is what an evaluation of an edge did.
type Result string

const (
	// Promoted: the promotion commit was pushed to the target branch (an
	// auto edge).
	Promoted Result = "promoted"
	// PullRequestOpened: the promotion branch was pushed and a pull
	// request opened.
	PullRequestOpened Result = "pr-opened"
	// PullRequestUpdated: the promotion was recomputed (the target moved
	// or a newer commit passed) and the branch and pull request updated.
	PullRequestUpdated Result = "pr-updated"
	// PullRequestCurrent: the open pull request already carries this
	// promotion; nothing was written.
	PullRequestCurrent Result = "pr-current"
	// BranchPushed: without a forge, the promotion branch was pushed (or
	// already carried this promotion); CompareURL is where to open the
	// pull request.
	BranchPushed Result = "branch-pushed"
	// Skipped: the target already has the promotable content.
	Skipped Result = "skipped"
	// Blocked: a gate failed; Blocker says which and why.
	Blocked Result = "blocked"
	// Held: the content was reverted on the target before and is not
	// promoted again; only newer content will be.
	Held Result = "held"
	// Frozen: the source is unhealthy (or frozen by an operator), so
	// promotions out of it are frozen.
	Frozen Result = "frozen"
	// Reverted: Rollback reverted a promotion (pushed, or by pull
	// request).
	Reverted Result = "reverted"
)

// Outcome is the result of one evaluation, as data: the caller logs it and
// records metrics.
type Outcome struct {
	// Edge is "from->to".
	Edge   string
	Result Result
	// SourceCommit is the synced source commit considered.
	SourceCommit string
	// TargetHead is the target branch head the promotion was computed on.
	TargetHead string
	// Commit is the promotion (or revert) commit pushed or found current.
	Commit string
	// Gates are the verdicts of the gates evaluated.
	Gates []GateResult
	// Blocker is the failed gate when Result is Blocked or Frozen.
	Blocker *GateResult
	// Retry, when not zero, is when a blocked evaluation can pass (the
	// rest of the soak).
	Retry time.Duration
	// Changes are the files the promotion changes on the target, and
	// Images the image tags it carries.
	Changes []Change
	Images  []ImageChange
	// PullRequest is the promotion pull request, when there is one.
	PullRequest *PullRequest
	// CompareURL is where to open the pull request, without a forge.
	CompareURL string
	// Attempts is how many times the commit was computed and pushed (more
	// than one when a push lost its lease to a concurrent writer).
	Attempts int
	// Events are the audit events this evaluation produced; an event is
	// reported once, when its state begins, not at every evaluation.
	Events []Event
}

// EventKind names an audit event.
type EventKind string

const (
	// EventPromoted: a promotion commit was pushed to the target branch.
	EventPromoted EventKind = "promoted"
	// EventPullRequestOpened: a promotion pull request was opened (or,
	// without a forge, the promotion branch pushed).
	EventPullRequestOpened EventKind = "pr-opened"
	// EventPullRequestUpdated: the promotion was recomputed and its
	// branch and pull request updated.
	EventPullRequestUpdated EventKind = "pr-updated"
	// EventMerged: a promotion of the edge landed on the target branch
	// (its pull request was merged).
	EventMerged EventKind = "merged"
	// EventHeld: content reverted on the target is held back.
	EventHeld EventKind = "held"
	// EventFrozen and EventUnfrozen: promotions out of the source stopped
	// and resumed.
	EventFrozen   EventKind = "frozen"
	EventUnfrozen EventKind = "unfrozen"
	// EventReverted: Baton reverted a promotion.
	EventReverted EventKind = "reverted"
)

// Event is an audit record: who did what to which revisions, when.
type Event struct {
	Kind EventKind
	// Edge is "from->to".
	Edge string
	// Who is the person or bot behind it: the commit author, the merger
	// where the forge says, the author of a revert.
	Who string
	// SourceCommit and TargetCommit are the revisions concerned: the
	// promoted source commit and the commit on (or for) the target.
	SourceCommit, TargetCommit string
	// PullRequest is the pull request number, or zero.
	PullRequest int
	// When it happened (commit time, or the promoter's clock).
	When time.Time
	// Message says it in words.
	Message string
}
