// Package agent is Baton's in-cluster agent: the one place where source,
// render, reconciler, health and promote are wired together. It runs one
// loop per synced environment behind a leader election, and an HTTP server
// for probes, metrics, webhooks and status.
//
// # The loop of one environment
//
//	poll (interval ± jitter, or at once on a webhook)
//	  └► render ─► reconciler Sync (diff, staged apply, prune, inventory)
//	        └► health Wait (interrupted by a newer revision)
//	              └► health Monitor (keeps evaluating until the next revision)
//	                    └► promote Evaluate for every pipeline edge out of it
//
// With a forge configured, the leader also keeps a preview (a comment and
// the status baton/preview/<env>) on every open pull request into a synced
// environment's branch (package preview, fed by pull request webhooks, a
// poll of open pull requests and the loops' syncs), and sets baton/<env> on
// every commit it syncs: pending, then success or failure with the cause
// (deploystatus.go, a Recorder).
//
// One repository watcher per repository polls all the branches the agent's
// environments use and hands each branch's result to its loop. A loop syncs
// when its branch moves and again every interval (drift is found on every
// pass), backs off exponentially (capped) after a failure, and evaluates
// promotion after every pass, every health change and when the promoter
// asks to be called again (the rest of a soak).
//
// # What is guaranteed
//
//   - Only the leader applies and promotes. With leader election on, the
//     replica holding the Lease runs the loops; a standby runs none. A
//     leadership ends when the Lease cannot be renewed within renewDeadline:
//     the loops are cancelled then, and a new leadership (of this or another
//     replica) starts only after they stopped on this replica.
//   - Nothing is lost: a failed poll keeps the last good revision, a failed
//     render applies nothing, a failed apply prunes nothing, and an apply
//     abandoned on shutdown or lost leadership leaves the previous inventory
//     in force (the reconciler writes it only after a complete apply).
//   - Shutdown (ctx ends, SIGTERM): the loops stop first (an apply in flight
//     is abandoned), then the Lease is released so that a standby takes over
//     at once, then the HTTP server stops.
//   - Results are data: every pass, health verdict and promotion evaluation
//     goes to the Recorder, one log line, and the status.
//   - The status is also where Kubernetes tools look: while leading, the
//     agent keeps one Environment object (baton.dev, see internal/envobject)
//     per synced environment in its namespace, whose status mirrors
//     /api/status (envobjects.go). Every replica watches those objects'
//     spec: a suspension takes effect from the next pass, which starts at
//     once, and a sync request (baton.dev/requestedAt) polls and syncs now
//     (control.go). Without the resource in the cluster, both are off and
//     /api/status is the only status.
//
// # What is not
//
//   - A standby's webhook is accepted but only triggers a poll once it leads;
//     the leader's own polls bound the delay. Point webhooks at the Service;
//     a standby answers them with 200 like the leader.
//   - Leases guard against a stopped or partitioned leader only within their
//     timing: a leader that cannot reach the API server keeps applying for up
//     to renewDeadline (its requests then fail anyway), and a standby takes
//     over after leaseDuration.
//   - The webhook secret is read at start; rotating it needs a restart.
package agent
