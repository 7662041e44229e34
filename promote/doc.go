// Package promote carries a release from one environment's branch to the
// next: gates, promotion commits, pull requests, holds and freezes.
//
// A Pipeline is an ordered list of environments (each a branch and a
// Kustomize overlay folder) and edges between them. Evaluate decides one
// edge from its source environment's state, given as plain data
// (SourceState):
//
//   - Unhealthy (or operator-frozen) source: Frozen. Nothing is written;
//     the edge's open pull request gets one comment per freeze.
//   - Gates: the source is synced at a commit C and has been healthy for
//     the soak (default 2 minutes, counted on the injected Clock), and
//     every PromQL gate passes. Otherwise Blocked, with the failing gate.
//     A person's SourceState.Override skips the soak and PromQL gates (not
//     a freeze or a hold) and is recorded in the Baton-Gates-Overridden
//     trailer.
//   - The promotion commit is computed on the target branch's current
//     head: the target's tree with every promotable path replaced by its
//     content at C, and the source overlay's pinned image tags carried into
//     the target overlay for the images both list. No merge, so no
//     conflicts; nothing outside the promotable paths changes. When that
//     changes nothing, Skipped.
//   - Content that a revert on the target undid is Held: the same commit,
//     or a newer commit with the same promotable content, is not promoted
//     again. Reverts are found in the target's history ("This reverts
//     commit <hash>" on the branch or in a merged pull request).
//   - An auto edge pushes the commit to the target branch; a pull-request
//     edge pushes it to baton/promote-<from>-to-<to> and opens or updates
//     the one pull request of that branch (without a Forge, it returns the
//     compare URL instead).
//
// What is guaranteed: every push is a compare-and-swap on the branch head
// the commit was computed from (a lease), so a concurrent writer's commit
// is never overwritten; a lost lease refetches, recomputes and retries, a
// bounded number of times. Two promoters racing open one pull request
// between them (a duplicate is closed); a promotion whose pull request was
// merged is not proposed again, and an open one whose content the target
// already has is closed. A promotion branch with a commit
// Baton did not make is not rewritten. Outcomes and audit events are
// returned as data; each event is reported once per promoter, and a landed
// promotion once across restarts and replicas when Options.Journal is set
// (the agent's is a ConfigMap).
//
// What is not: only-the-leader is the caller's job (two promoters stay
// correct, but do the work twice). Holds look back HistoryWindow (30
// days by default) on the target branch. A promotion pull request merged
// with a merge commit, rebased or squashed is recognised as the promotion:
// a squash commit by the trailers or the pull request's marker its message
// kept, else by its tree and parent (those of the promotion branch's
// head), else through the forge (the merge commit of a merged promotion
// pull request, or its title with "(#N)"). A squash of a deleted branch
// without a forge is known by its title only, which names the source
// commit by its short hash. Commits are signed only when Options.Signer
// is set.
package promote
