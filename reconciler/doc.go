// Package reconciler makes the live cluster match the rendered objects of one
// environment: diff, server-side apply, prune, drift, inventory.
//
// One pass (Reconciler.Sync) takes the complete desired set of an environment
// at one revision and:
//
//  1. plans it: every object is validated and mapped through discovery;
//     namespaced objects without a namespace get the environment's default;
//     baton's labels (app.kubernetes.io/managed-by, baton.dev/environment)
//     and a hash of the object's own desired content are added; fields named
//     by ignore rules are removed. Any invalid object refuses the whole pass
//     before anything is applied.
//  2. admits it: every object must be inside the request's Scope, none may
//     be one of the agent's own (its namespace, its ClusterRoles and
//     bindings), and none may exist labelled for another environment. Any
//     violation refuses the whole pass (*RefusedError) before anything is
//     applied or pruned.
//  3. applies it in stages — CRDs (waited on until Established), Namespaces
//     (until Active), other cluster-scoped objects, namespaced objects,
//     admission webhooks and policies last — with server-side apply, field
//     manager "baton", conflicts forced (fields other managers set are taken
//     over; objects of other environments never are). Within a stage a
//     bounded pool of workers applies objects in parallel. Objects no
//     environment owns are adopted; those first made by `kubectl apply` have
//     kubectl's fields handed to baton so that fields git no longer has are
//     removed.
//  4. prunes, only if every object applied: objects of the previous inventory
//     that left git are deleted, within the safety rules (see Request.Prune),
//     when their live label still names the environment. An entry stays in
//     the inventory until its object is confirmed gone: a failed or refused
//     deletion, a kind not served at the moment, an object kept by policy or
//     still terminating are tried again later.
//  5. records the new inventory in a ConfigMap, so that a later pass — in
//     this or a new process — knows what to prune.
//
// The inventory is written ahead: before step 3 applies objects it does not
// hold, it records them as pending. A pass that fails or is cut short (an
// API server outage, SIGKILL) therefore leaves every object it may have
// created known, and a later pass prunes those that left git (after a
// revert, say). Nothing is pruned after a failed apply.
//
// Drift (an object edited or deleted by hand) is found on every pass, even at
// the same revision, and corrected or, in detect-only mode, only reported.
// Unchanged objects cost no request: a watch cache of the environment's
// objects (label-selected informers) answers, and the desired-content hash
// tells a change in git from drift without a per-revision annotation.
//
// Reconciler.Diff runs the same pass as server-side dry runs and returns what
// Sync would do, with unified YAML diffs (Secret values masked).
//
// With Request.ServiceAccount, every request about the environment's
// objects (apply, dry run, reads, deletes, waits, the watch cache)
// impersonates that account, so that the cluster's RBAC is the final fence;
// the inventory, the agent's own record, is kept as the agent.
//
// Results are data (Result, Change): callers log them, record metrics and
// emit events. Every error about an object names it as Kind/namespace/name
// (ObjectError); RBAC denials name the verb, resource and namespace.
package reconciler
