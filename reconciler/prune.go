package reconciler

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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

// pruned is the outcome of one prune target and whether its entry stays in
// the inventory.
type pruned struct {
	outcome
	keep bool
}

// prune deletes what the inventory has (applied or pending) and the desired
// set has not, in reverse stage order (admission webhooks first, CRDs last),
// so that nothing is deleted before what depends on it. It returns the
// outcomes and the entries to keep in the inventory: an entry leaves only
// when its object is confirmed gone (not found, or its kind gone from the
// cluster) or no longer this environment's (relabelled). A failed deletion,
// a kind not served at the moment (a CRD being re-created, an aggregated API
// down), an object kept by policy or annotation and one still terminating
// all stay, so that a later pass deletes them once it may.
func (p *pass) prune(ctx context.Context, items []*item, known []inventory.Entry) ([]outcome, []inventory.Entry) {
	desired := make(map[objectKey]bool, len(items))
	for _, it := range items {
		desired[keyOf(it.ref)] = true
	}
	var targets []pruneTarget
	var outs []outcome
	var keep []inventory.Entry
	kinds := &kindCheck{p: p}
	for _, e := range known {
		ref := ObjectRef{Group: e.Group, Version: e.Version, Kind: e.Kind, Namespace: e.Namespace, Name: e.Name}
		if desired[keyOf(ref)] {
			continue
		}
		m, err := kinds.mapping(ctx, e)
		if meta.IsNoMatchError(err) {
			gone, why := kinds.gone(ctx, e.Group, e.Kind)
			if gone {
				// Its definition is gone, and with it every object of the kind.
				outs = append(outs, outcome{Change: Change{Ref: ref, Action: ActionSkipped, Message: "gone with its kind: " + why}})
				continue
			}
			keep = append(keep, e)
			outs = append(outs, outcome{Change: Change{Ref: ref, Action: ActionSkipped,
				Message: "kept for a later pass: its kind is not served at the moment (" + why + ")"}})
			continue
		}
		if err != nil {
			keep = append(keep, e)
			outs = append(outs, outcome{Change: Change{Ref: ref, Action: ActionFailed, Err: objectError("prune", ref, err)}})
			continue
		}
		namespaced := m.Scope.Name() == meta.RESTScopeNameNamespace
		if reason := p.outsideScope(ref, namespaced); reason != "" {
			outs = append(outs, outcome{Change: Change{Ref: ref, Action: ActionSkipped, Message: "kept: " + reason}})
			continue
		}
		targets = append(targets, pruneTarget{ref: ref, entry: e, gvr: m.Resource, stage: stageOf(e.Group, e.Kind, namespaced)})
	}
	slices.SortFunc(targets, func(a, b pruneTarget) int {
		return cmp.Or(cmp.Compare(b.stage, a.stage), compareRefs(a.ref, b.ref))
	})

	results := make([]pruned, len(targets))
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
	for i, r := range results {
		if r.keep {
			keep = append(keep, targets[i].entry)
		}
		if r.Action != "" {
			outs = append(outs, r.outcome)
		}
	}
	return outs, keep
}

func (p *pass) pruneOne(ctx context.Context, t pruneTarget) (res pruned) {
	start := time.Now()
	res.Ref = t.ref
	defer func() { res.Duration = time.Since(start) }()
	fail := func(err error) pruned {
		res.Action, res.Err, res.keep = ActionFailed, objectError("prune", t.ref, err), true
		return res
	}
	// Not p.client().get: it reads a 404 as gone, and a resource not served
	// answers 404 too.
	live, err := p.client().resource(t.gvr, t.ref.Namespace).Get(ctx, t.ref.Name, metav1.GetOptions{})
	switch {
	case notServed(err):
		// Discovery was stale: the resource is not served at the moment (a
		// CRD version switched off, an aggregated API down). That is not
		// the object gone: keep it, and refresh discovery for the next pass.
		p.r.mapper.Reset()
		res.Action, res.Message, res.keep = ActionSkipped, "kept for a later pass: "+qualifiedResource(t.gvr)+" is not served at the moment", true
		return res
	case apierrors.IsNotFound(err):
		return pruned{} // gone: nothing to report, nothing to keep
	case err != nil:
		return fail(p.client().denied("get", t.gvr, t.ref.Namespace, err))
	}
	if env := live.GetLabels()[LabelEnvironment]; env != p.req.Environment {
		// Someone relabelled it, or another environment took it over: it
		// is not this environment's any more.
		res.Action, res.Message = ActionSkipped, "kept: labelled for environment \""+env+"\", not this one"
		return res
	}
	if live.GetDeletionTimestamp() != nil {
		// Deleted already, waiting for finalizers: gone once they finish.
		res.Action, res.Message, res.keep = ActionSkipped, "being deleted", true
		return res
	}
	del, reason := pruneDecision(t.ref, live.GetAnnotations(), p.req.Prune)
	if !del {
		// Still baton's: should the policy or the annotation change, a
		// later pass deletes it.
		res.Action, res.Message, res.keep = ActionSkipped, reason, true
		return res
	}
	res.Action = ActionDeleted
	res.Diff, _ = objectDiff(t.ref, live, nil)
	if p.dryRun {
		return res
	}
	if err := p.client().delete(ctx, t.gvr, t.ref.Namespace, t.ref.Name, live.GetUID()); err != nil {
		return fail(err)
	}
	// Finalizers keep it until they finish: know it until it is gone.
	res.keep = len(live.GetFinalizers()) > 0
	return res
}

// kindCheck maps inventory entries to resources and tells a kind that is
// gone from one that is only not served at the moment. It remembers its
// answers for one prune.
type kindCheck struct {
	p *pass
	// reset is set once discovery was refreshed for this prune.
	reset bool
	// crds and apiServices are listed once, on the first kind not served.
	listed      bool
	crds        []*unstructured.Unstructured
	apiServices []*unstructured.Unstructured
	listErr     error
}

// mapping resolves an entry's kind at the version it was applied with, or
// at any version still served (the version may have been retired since).
func (k *kindCheck) mapping(ctx context.Context, e inventory.Entry) (*meta.RESTMapping, error) {
	gk := schema.GroupKind{Group: e.Group, Kind: e.Kind}
	m, err := k.p.r.mapper.RESTMappingWithContext(ctx, gk, e.Version)
	if !meta.IsNoMatchError(err) {
		return m, err
	}
	if m, err = k.p.r.mapper.RESTMappingWithContext(ctx, gk); !meta.IsNoMatchError(err) {
		return m, err
	}
	if !k.reset {
		// Discovery may be stale (a CRD or an aggregated API came back).
		k.p.r.mapper.ResetWithContext(ctx)
		k.reset = true
		return k.mapping(ctx, e)
	}
	return nil, err
}

// notServed reports a 404 that is not the API server's word on an object
// (a Status naming it) but a path it does not serve at all.
func notServed(err error) bool {
	return apierrors.IsNotFound(err) && apierrors.HasStatusCause(err, metav1.CauseTypeUnexpectedServerResponse)
}

var gvrAPIService = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

// gone reports whether a kind that discovery does not serve is gone from
// the cluster for good: no CustomResourceDefinition defines it, and every
// APIService of its group is available (so discovery of the group is
// complete). A CRD being re-created, an aggregated API that is down, or
// lists refused (namespaced RBAC) cannot confirm it. why says which.
func (k *kindCheck) gone(ctx context.Context, group, kind string) (bool, string) {
	if !k.listed {
		k.listed = true
		crds, err := k.p.r.client.dyn.Resource(gvrCRD).List(ctx, metav1.ListOptions{})
		if err != nil {
			k.listErr = fmt.Errorf("list CustomResourceDefinitions: %w", err)
		} else if svcs, err := k.p.r.client.dyn.Resource(gvrAPIService).List(ctx, metav1.ListOptions{}); err != nil {
			k.listErr = fmt.Errorf("list APIServices: %w", err)
		} else {
			for i := range crds.Items {
				k.crds = append(k.crds, &crds.Items[i])
			}
			for i := range svcs.Items {
				k.apiServices = append(k.apiServices, &svcs.Items[i])
			}
		}
	}
	if k.listErr != nil {
		return false, "cannot tell whether it is gone: " + k.listErr.Error()
	}
	for _, crd := range k.crds {
		g, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
		kd, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "kind")
		if g == group && kd == kind {
			return false, "CustomResourceDefinition " + crd.GetName() + " defines it"
		}
	}
	for _, svc := range k.apiServices {
		g, _, _ := unstructured.NestedString(svc.Object, "spec", "group")
		if g == group && !hasCondition(svc, "Available", "True") {
			return false, "APIService " + svc.GetName() + " is not available"
		}
	}
	return true, "no CustomResourceDefinition defines it and its group's APIs are all available"
}
