package reconciler

import (
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Action says what a pass did to one object (Sync) or would do to it (Diff).
type Action string

// The actions a Change can carry.
const (
	// ActionCreated: the object did not exist and was created.
	ActionCreated Action = "created"
	// ActionConfigured: the object existed and the apply changed it.
	ActionConfigured Action = "configured"
	// ActionUnchanged: the live object already matched git.
	ActionUnchanged Action = "unchanged"
	// ActionDeleted: the object left git and was pruned.
	ActionDeleted Action = "deleted"
	// ActionRecreated: an immutable field changed and the object carried
	// baton.dev/recreate: "true", so it was deleted and created again.
	ActionRecreated Action = "recreated"
	// ActionSkipped: the object was left alone on purpose (prune safety, an
	// earlier stage failed); Change.Message says why.
	ActionSkipped Action = "skipped"
	// ActionDrifted: in detect-only mode, the live object no longer matches
	// git at the revision it was applied from; nothing was changed.
	ActionDrifted Action = "drifted"
	// ActionFailed: the operation failed; Change.Err says why.
	ActionFailed Action = "failed"
)

// DriftMode says what a pass does with drift: live objects that no longer
// match the revision they were applied from (edited or deleted by hand).
type DriftMode string

const (
	// DriftCorrect (also the zero value) re-applies drifted objects.
	DriftCorrect DriftMode = "correct"
	// DriftDetectOnly reports drifted objects (ActionDrifted) without changing
	// them. Objects that changed in git are still applied: only drift is
	// left alone.
	DriftDetectOnly DriftMode = "detect-only"
)

// IgnoreRule names fields that other actors own, so that baton neither sets
// nor compares them — e.g. /spec/replicas of a Deployment scaled by an HPA.
// The fields are removed from the apply payload, which also releases baton's
// ownership of them.
type IgnoreRule struct {
	// Group matches the object's API group exactly; "" matches any group.
	Group string
	// Kind matches the object's kind exactly; "" matches any kind.
	Kind string
	// Namespace is a path.Match glob over the object's namespace; "" matches any.
	Namespace string
	// Name is a path.Match glob over the object's name; "" matches any.
	Name string
	// Paths are RFC 6901 JSON pointers, e.g. "/spec/replicas". A pointer
	// that is absent from an object is not an error.
	Paths []string
}

// Request is one pass for one environment at one revision.
type Request struct {
	// Environment names the environment; it must be a DNS label (it becomes a
	// label value and part of the inventory ConfigMap's name). Required.
	Environment string
	// Revision is the git revision the objects were rendered from; it is
	// recorded in the inventory and the Result, never on objects.
	Revision string
	// DefaultNamespace is given to namespaced objects without a namespace;
	// "" makes such objects an error.
	DefaultNamespace string
	// Objects is the complete desired set. Never pass a partial set (a failed
	// render): objects missing from it are pruned.
	Objects []*unstructured.Unstructured
	// Prune is the default policy for objects that left git: true deletes
	// them. An object's baton.dev/prune annotation overrides it ("true"
	// deletes, "false" keeps); Namespaces, CRDs and PersistentVolumeClaims are
	// kept unless annotated "true".
	Prune bool
	// AllowEmpty permits an empty desired set to prune a non-empty inventory;
	// false refuses such a pass (the usual cause is a broken render).
	AllowEmpty bool
	// Drift says whether drift is corrected (zero value) or only reported.
	Drift DriftMode
	// Ignore lists fields owned by others; see IgnoreRule.
	Ignore []IgnoreRule
	// Suspend makes the pass apply and prune nothing; Result.Suspended says so.
	Suspend bool
	// Scope limits what the request may write: an object outside it
	// refuses the whole request (a *RefusedError) before anything is
	// applied or pruned. Nil applies no scope — for callers that checked
	// the objects themselves; the agent always sets one. The agent's own
	// namespace and RBAC are off-limits either way.
	Scope *Scope
	// ServiceAccount, when set, is impersonated by every request made for
	// the environment's objects: apply, prune, dry run, reads and watches.
	// The inventory (the agent's own record) is read and written as the
	// agent. Nil makes the requests as the agent.
	ServiceAccount *ServiceAccount
	// SourceOf names the file a rendered object came from, for refusal
	// messages ("overlays/dev/web.yaml:3"); it is called only when an
	// object is refused. Nil leaves sources out.
	SourceOf func(obj *unstructured.Unstructured) string
}

// ObjectRef identifies an object. It is plain data so that other packages
// (health, the CLI) can convert it without importing client-go types.
type ObjectRef struct {
	Group     string
	Version   string
	Kind      string
	Namespace string
	Name      string
}

// String formats the reference as Kind/namespace/name, or Kind/name for a
// cluster-scoped object. Every error about an object uses this form.
func (r ObjectRef) String() string {
	if r.Namespace == "" {
		return r.Kind + "/" + r.Name
	}
	return r.Kind + "/" + r.Namespace + "/" + r.Name
}

// Change is what happened to one object.
type Change struct {
	Ref    ObjectRef
	Action Action
	// Diff is a unified YAML diff from the live object to the desired one,
	// Secret values masked; empty when nothing changed.
	Diff string
	// Message explains a skip or an adoption; empty otherwise.
	Message string
	// Err is set when Action is ActionFailed; it names the object.
	Err error
	// Duration is the time spent on this object.
	Duration time.Duration
}

// Result is the outcome of one pass, returned as data: the caller logs it,
// records metrics and emits events.
type Result struct {
	Environment string
	Revision    string
	// Changes lists applied objects in staged order, then pruned ones.
	Changes []Change
	// Counts counts Changes by action.
	Counts map[Action]int
	// Duration is the wall time of the pass.
	Duration time.Duration
	// Drifted lists objects found drifted (corrected unless detect-only).
	Drifted []ObjectRef
	// Pruned lists objects deleted (or, for Diff, that would be deleted).
	Pruned []ObjectRef
	// Suspended is true when the request was suspended and nothing was done.
	Suspended bool
	// DryRun is true for a Result returned by Diff.
	DryRun bool
	// PreviousRevision is the revision of the last pass that completed
	// before this one, as the inventory recorded it (in the cluster, so it
	// survives restarts and leader changes); empty for a first pass.
	PreviousRevision string
}

// count fills Counts from Changes.
func (r *Result) count() {
	r.Counts = make(map[Action]int)
	for _, c := range r.Changes {
		r.Counts[c.Action]++
	}
}

// Well-known labels and annotations.
const (
	// LabelManagedBy marks every applied object as baton's.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of LabelManagedBy.
	ManagedByValue = "baton"
	// LabelEnvironment names the environment that owns an object; the watch
	// cache and prune select on it.
	LabelEnvironment = "baton.dev/environment"
	// AnnotationPrune overrides the prune policy: "true" or "false".
	AnnotationPrune = "baton.dev/prune"
	// AnnotationRecreate: "true" lets baton delete and create an object whose
	// immutable fields changed.
	AnnotationRecreate = "baton.dev/recreate"
	// AnnotationDesiredHash holds a hash of the object's own desired content.
	// It changes only when the object changes in git (never per revision) and
	// lets a pass tell drift from a change in git without a round trip.
	AnnotationDesiredHash = "baton.dev/desired-hash"
)
