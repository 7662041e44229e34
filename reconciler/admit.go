package reconciler

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// admit decides, before anything is applied or pruned, whether the
// environment may write every object of the planned set: each must be in
// its scope, none may be one of the agent's own, and none may belong to
// another environment. Any violation refuses the whole set with a
// *RefusedError listing them all.
func (p *pass) admit(ctx context.Context, items []*item) error {
	if err := checkScope(items, p.req.Objects, p.req, p.r.opts.InventoryNamespace); err != nil {
		return err
	}
	vs, err := p.foreignOwners(ctx, items)
	if err != nil {
		return err
	}
	if len(vs) > 0 {
		return &RefusedError{Violations: vs}
	}
	return nil
}

// ownerOf returns the environment an object is labelled for; "" for none
// (made by kubectl or another tool: an environment may adopt it).
func ownerOf(obj *unstructured.Unstructured) string {
	if obj == nil {
		return ""
	}
	return obj.GetLabels()[LabelEnvironment]
}

func ownershipViolation(ref ObjectRef, owner, env string) Violation {
	return Violation{Ref: ref, Rule: RuleOwnership, Reason: fmt.Sprintf(
		"it belongs to environment %q (label %s=%s); environment %q never takes over another environment's object: remove it from one of them",
		owner, LabelEnvironment, owner, env)}
}

// groupKey is one resource in one namespace ("" when cluster-scoped).
type groupKey struct {
	gvr       schema.GroupVersionResource
	namespace string
}

// foreignOwners finds the objects of the set that exist labelled for
// another environment. Only objects new to the environment (not in its
// inventory) are looked up, with one list per resource and namespace that
// selects objects labelled for any other environment — usually none, so a
// first sync of a thousand objects costs a handful of requests, and a pass
// with nothing new costs none. Objects already in the inventory are checked
// as they are applied (their live state is read anyway). A list the
// account may not make falls back to a GET per object.
func (p *pass) foreignOwners(ctx context.Context, items []*item) ([]Violation, error) {
	groups := map[groupKey][]*item{}
	var order []groupKey
	for _, it := range items {
		if it.inInventory || !it.mapped {
			// An unmapped kind comes with its CRD in this revision: no
			// object of it exists yet.
			continue
		}
		k := groupKey{it.gvr, it.ref.Namespace}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], it)
	}
	if len(order) == 0 {
		return nil, nil
	}
	selector := LabelEnvironment + "," + LabelEnvironment + "!=" + p.req.Environment
	// Written by index: each worker owns one slot.
	found := make([][]Violation, len(order))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.r.opts.Concurrency)
	for i, k := range order {
		g.Go(func() error {
			vs, err := p.foreignInGroup(gctx, k, groups[k], selector)
			found[i] = vs
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var out []Violation
	for _, vs := range found {
		out = append(out, vs...)
	}
	return out, nil
}

func (p *pass) foreignInGroup(ctx context.Context, k groupKey, items []*item, selector string) ([]Violation, error) {
	owners := map[string]string{}
	listed, err := p.client().list(ctx, k.gvr, k.namespace, selector)
	switch {
	case err == nil:
		for _, o := range listed {
			if owner := ownerOf(&o); owner != "" {
				owners[o.GetName()] = owner // the selector also matches an empty label
			}
		}
	case apierrors.IsForbidden(err):
		for _, it := range items {
			live, err := p.client().get(ctx, it.gvr, it.ref.Namespace, it.ref.Name)
			if err != nil {
				return nil, objectError("read", it.ref, err)
			}
			if owner := ownerOf(live); owner != "" && owner != p.req.Environment {
				owners[it.ref.Name] = owner
			}
		}
	default:
		return nil, fmt.Errorf("look for objects of other environments: %w", err)
	}
	var vs []Violation
	for _, it := range items {
		if owner, ok := owners[it.ref.Name]; ok {
			v := ownershipViolation(it.ref, owner, p.req.Environment)
			if p.req.SourceOf != nil && it.source < len(p.req.Objects) {
				v.Source = p.req.SourceOf(p.req.Objects[it.source])
			}
			vs = append(vs, v)
		}
	}
	return vs, nil
}
