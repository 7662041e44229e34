package reconciler

import (
	"cmp"
	"context"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/baton-gitops/baton/reconciler/inventory"
)

// protectedKinds hold data or other objects: deleting one because it left
// git would take far more than itself. They are pruned only when annotated
// baton.dev/prune: "true".
var protectedKinds = map[schema.GroupKind]bool{
	{Group: "", Kind: "Namespace"}:             true,
	{Group: groupAPIExtensions, Kind: kindCRD}: true,
	{Group: "", Kind: "PersistentVolumeClaim"}: true,
}

// pruneDecision decides whether an object that left git is deleted. The
// object's own annotation wins, then the protected kinds, then the
// environment's policy. reason explains a keep.
func pruneDecision(ref ObjectRef, annotations map[string]string, policy bool) (del bool, reason string) {
	switch annotations[AnnotationPrune] {
	case "false":
		return false, "kept: annotated " + AnnotationPrune + ": \"false\""
	case "true":
		return true, ""
	}
	if protectedKinds[schema.GroupKind{Group: ref.Group, Kind: ref.Kind}] {
		return false, "kept: " + ref.Kind + " is only pruned when annotated " + AnnotationPrune + ": \"true\""
	}
	if !policy {
		return false, "kept: pruning is off for this environment"
	}
	return true, ""
}

// pruneTarget is an inventory entry that left git.
type pruneTarget struct {
	ref   ObjectRef
	entry inventory.Entry
	gvr   schema.GroupVersionResource
	stage stage
}

// prune deletes what the inventory has (applied or pending) and the desired
// set has not, in reverse stage order (admission webhooks first, CRDs last), so that
// nothing is deleted before what depends on it. It returns the outcomes and
// the entries to keep in the inventory: those whose deletion failed, so that
// the next pass tries again. A kept object (by policy) leaves the inventory:
// baton no longer manages it.
func (p *pass) prune(ctx context.Context, items []*item, known []inventory.Entry) ([]outcome, []inventory.Entry) {
	desired := make(map[objectKey]bool, len(items))
	for _, it := range items {
		desired[keyOf(it.ref)] = true
	}
	var targets []pruneTarget
	var outs []outcome
	for _, e := range known {
		ref := ObjectRef{Group: e.Group, Version: e.Version, Kind: e.Kind, Namespace: e.Namespace, Name: e.Name}
		if desired[keyOf(ref)] {
			continue
		}
		m, err := p.r.mapper.RESTMappingWithContext(ctx, schema.GroupKind{Group: e.Group, Kind: e.Kind}, e.Version)
		if meta.IsNoMatchError(err) {
			// Its CRD is gone, and with it every object of the kind.
			outs = append(outs, outcome{Change: Change{Ref: ref, Action: ActionSkipped, Message: "kind no longer served"}})
			continue
		}
		if err != nil {
			outs = append(outs, outcome{Change: Change{Ref: ref, Action: ActionFailed, Err: objectError("prune", ref, err)}})
			continue
		}
		namespaced := m.Scope.Name() == meta.RESTScopeNameNamespace
		targets = append(targets, pruneTarget{ref: ref, entry: e, gvr: m.Resource, stage: stageOf(e.Group, e.Kind, namespaced)})
	}
	slices.SortFunc(targets, func(a, b pruneTarget) int {
		return cmp.Or(cmp.Compare(b.stage, a.stage), compareRefs(a.ref, b.ref))
	})

	results := make([]outcome, len(targets))
	for s := numStages - 1; s >= 0; s-- {
		g := new(errgroup.Group)
		g.SetLimit(p.r.opts.Concurrency)
		for i, t := range targets {
			if t.stage != s {
				continue
			}
			g.Go(func() error {
				results[i] = p.pruneOne(ctx, t)
				return nil
			})
		}
		_ = g.Wait()
	}
	var keep []inventory.Entry
	for i, o := range results {
		if o.Action == "" {
			continue // already gone: nothing to report
		}
		if o.Err != nil {
			keep = append(keep, targets[i].entry)
		}
		outs = append(outs, o)
	}
	return outs, keep
}

func (p *pass) pruneOne(ctx context.Context, t pruneTarget) (out outcome) {
	start := time.Now()
	out.Ref = t.ref
	defer func() { out.Duration = time.Since(start) }()
	live, err := p.r.client.get(ctx, t.gvr, t.ref.Namespace, t.ref.Name)
	if err != nil {
		out.Action, out.Err = ActionFailed, objectError("prune", t.ref, err)
		return out
	}
	if live == nil {
		return outcome{}
	}
	if env := live.GetLabels()[LabelEnvironment]; env != p.req.Environment {
		// Someone relabelled it, or another environment took it over.
		out.Action, out.Message = ActionSkipped, "kept: labelled for environment \""+env+"\", not this one"
		return out
	}
	del, reason := pruneDecision(t.ref, live.GetAnnotations(), p.req.Prune)
	if !del {
		out.Action, out.Message = ActionSkipped, reason
		return out
	}
	out.Action = ActionDeleted
	out.Diff, _ = objectDiff(t.ref, live, nil)
	if p.dryRun {
		return out
	}
	if err := p.r.client.delete(ctx, t.gvr, t.ref.Namespace, t.ref.Name, live.GetUID()); err != nil {
		out.Action, out.Err = ActionFailed, objectError("prune", t.ref, err)
	}
	return out
}
