// Package agent is Baton's in-cluster agent: the one place where source,
// render, reconciler, health and promote are wired together. It runs one
// loop per synced environment — with several replicas, the loops of the
// environments whose Lease it holds (internal/lease) — and an HTTP server
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
//   - Each environment is synced (applied, promoted) by one replica at a
//     time. With leader election on, every environment has a Lease; the
//     replica holding it runs the environment's loop, and each replica aims
//     at its fair share of the environments, counting the live replicas by
//     their membership Leases: adding a replica adds capacity, and the
//     others give it their surplus after the pass in hand. An environment's
//     loop ends when its Lease cannot be renewed within renewDeadline; its
//     writes are refused from then on (lease.Guard, the last check before
//     the network), and another replica takes the Lease only leaseDuration
//     after it last saw it renewed. The environment's Environment object is
//     written by the replica that syncs it.
//   - Work is bounded and fair: renders and applies take one of
//     agent.workers slots, health waits one of agent.healthWaits, handed
//     out round-robin between environments, a webhook's or `baton sync`'s
//     sync first (internal/workpool). A slow environment holds one slot.
//   - Nothing is lost: a failed poll keeps the last good revision, a failed
//     render applies nothing, a failed apply prunes nothing, and an apply
//     abandoned on shutdown or lost leadership leaves the previous inventory
//     in force (the reconciler writes it only after a complete apply).
//   - Shutdown (ctx ends, SIGTERM): the loops stop first (an apply in flight
//     is abandoned), then the Leases are released so that the other replicas
//     take over at once, then the HTTP server stops.
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
//   - A webhook reaches one replica (point webhooks at the Service); it is
//     handed to the others through a ConfigMap they watch (relay.go), so
//     the replica syncing the pushed branch polls within a second or two.
//   - Leases guard against a stopped or partitioned replica only within
//     their timing: one that cannot reach the API server keeps applying for
//     up to renewDeadline (its requests then fail anyway), and another takes
//     over after leaseDuration. A request already sent when the fence ends
//     may still land; the gap between the two durations is its margin.
//   - Fairness between replicas is by count of environments, not their
//     weight; the Lease renewals cost one write per environment every
//     renewDeadline/3 (README: scale limits).
//   - The webhook secret is read at start; rotating it needs a restart.
package agent
