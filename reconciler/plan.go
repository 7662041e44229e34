package reconciler

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
)

// mapper resolves kinds to resources; the discovery mapper in production, a
// static one in unit tests.
type mapper interface {
	RESTMappingWithContext(ctx context.Context, gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error)
}

// item is one desired object prepared for a pass.
type item struct {
	// index is the position in the staged order and in Result.Changes.
	index int
	// source is the position in Request.Objects.
	source int
	ref    ObjectRef
	gvk    schema.GroupVersionKind
	// gvr is the resource; valid once mapped is true. A custom resource whose
	// CRD is part of the same desired set is mapped only after that CRD is
	// Established.
	gvr        schema.GroupVersionResource
	mapped     bool
	namespaced bool
	stage      stage
	// payload is what is sent: server fields stripped, namespace defaulted,
	// ignored fields removed, baton's labels and hash annotation added.
	payload *unstructured.Unstructured
	hash    string
	// recreate is the object's baton.dev/recreate: "true".
	recreate bool
	// inInventory: the previous pass applied this object, so its absence is
	// drift (deleted by hand), not news.
	inInventory bool
}

// objectKey identifies an object across API versions: moving a kind from
// v1beta1 to v1 must not look like a delete and a create.
type objectKey struct {
	Group, Kind, Namespace, Name string
}

func keyOf(r ObjectRef) objectKey {
	return objectKey{r.Group, r.Kind, r.Namespace, r.Name}
}

// crdScopes lists the kinds defined by CRDs in the desired set, with whether
// they are namespaced, so that their custom resources can wait for mapping.
func crdScopes(objs []*unstructured.Unstructured) map[schema.GroupKind]bool {
	out := make(map[schema.GroupKind]bool)
	for _, o := range objs {
		if o == nil || o.GetKind() != kindCRD || o.GroupVersionKind().Group != groupAPIExtensions {
			continue
		}
		group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
		scope, _, _ := unstructured.NestedString(o.Object, "spec", "scope")
		if group != "" && kind != "" {
			out[schema.GroupKind{Group: group, Kind: kind}] = scope != "Cluster"
		}
	}
	return out
}

// plan validates and prepares the desired set. Any error refuses the whole
// request before anything is applied: an invalid object means the render
// went wrong, and a partial set must never be applied or pruned against.
func plan(ctx context.Context, m mapper, req Request) ([]*item, error) {
	crds := crdScopes(req.Objects)
	m = &memoMapper{next: m, seen: make(map[schema.GroupVersionKind]memoEntry)}
	items := make([]*item, 0, len(req.Objects))
	seen := make(map[objectKey]int, len(req.Objects))
	var errs []error
	reset := false
	for i, obj := range req.Objects {
		it, err := planOne(ctx, m, req, crds, obj, i)
		if err != nil && meta.IsNoMatchError(err) && !reset {
			// A CRD may have been installed since discovery was cached:
			// refresh once per pass and retry.
			if r, ok := m.(resettable); ok {
				r.ResetWithContext(ctx)
			}
			reset = true
			it, err = planOne(ctx, m, req, crds, obj, i)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		k := keyOf(it.ref)
		if first, dup := seen[k]; dup {
			errs = append(errs, objectError("plan", it.ref, fmt.Errorf("duplicate object: objects %d and %d have the same group, kind, namespace and name", first, i)))
			continue
		}
		seen[k] = i
		items = append(items, it)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	sortStaged(items)
	return items, nil
}

func planOne(ctx context.Context, m mapper, req Request, crds map[schema.GroupKind]bool, obj *unstructured.Unstructured, i int) (*item, error) {
	if obj == nil {
		return nil, fmt.Errorf("object %d: nil object", i)
	}
	gvk := obj.GroupVersionKind()
	ref := ObjectRef{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind, Namespace: obj.GetNamespace(), Name: obj.GetName()}
	switch {
	case obj.GetAPIVersion() == "":
		return nil, objectError("plan", ref, fmt.Errorf("object %d: apiVersion is missing", i))
	case gvk.Kind == "":
		return nil, objectError("plan", ref, fmt.Errorf("object %d: kind is missing", i))
	case ref.Name == "":
		return nil, objectError("plan", ref, fmt.Errorf("object %d: metadata.name is missing (generateName is not supported: an object must have a name to be tracked)", i))
	}

	it := &item{ref: ref, gvk: gvk, source: i}
	mapping, err := m.RESTMappingWithContext(ctx, gvk.GroupKind(), gvk.Version)
	switch {
	case err == nil:
		it.gvr, it.mapped = mapping.Resource, true
		it.namespaced = mapping.Scope.Name() == meta.RESTScopeNameNamespace
	case meta.IsNoMatchError(err):
		namespaced, defined := crds[gvk.GroupKind()]
		if !defined {
			return nil, objectError("map", ref, fmt.Errorf("%w (is its CustomResourceDefinition installed?)", err))
		}
		// Mapped after its CRD is Established, in the same pass.
		it.namespaced = namespaced
	default:
		return nil, objectError("map", ref, err)
	}

	switch {
	case it.namespaced && ref.Namespace == "":
		if req.DefaultNamespace == "" {
			return nil, objectError("plan", ref, errors.New("namespaced object has no namespace and the environment has no default namespace"))
		}
		it.ref.Namespace = req.DefaultNamespace
	case !it.namespaced && ref.Namespace != "":
		return nil, objectError("plan", ref, fmt.Errorf("cluster-scoped %s must not set metadata.namespace (%q)", gvk.Kind, ref.Namespace))
	}
	it.stage = stageOf(gvk.Group, gvk.Kind, it.namespaced)
	if err := it.buildPayload(obj, req); err != nil {
		return nil, objectError("plan", it.ref, err)
	}
	return it, nil
}

// buildPayload makes the apply payload from the rendered object. Order
// matters: ignore rules are applied before baton's labels so that a rule can
// never remove them, and the hash is taken last, over everything else.
func (it *item) buildPayload(obj *unstructured.Unstructured, req Request) error {
	p := obj.DeepCopy()
	stripServerFields(p.Object)
	if it.namespaced {
		p.SetNamespace(it.ref.Namespace)
	}
	for _, ptr := range ignoredPaths(req.Ignore, it.ref) {
		if _, err := removePointer(p.Object, ptr); err != nil {
			return err
		}
	}
	labels := p.GetLabels()
	if labels == nil {
		labels = make(map[string]string, 2)
	}
	labels[LabelManagedBy] = ManagedByValue
	labels[LabelEnvironment] = req.Environment
	p.SetLabels(labels)

	ann := maps.Clone(p.GetAnnotations())
	delete(ann, AnnotationDesiredHash)
	if len(ann) == 0 {
		unstructured.RemoveNestedField(p.Object, "metadata", "annotations")
	} else {
		p.SetAnnotations(ann)
	}
	it.recreate = ann[AnnotationRecreate] == "true"

	hash, err := desiredHash(p.Object)
	if err != nil {
		return err
	}
	if ann == nil {
		ann = make(map[string]string, 1)
	}
	ann[AnnotationDesiredHash] = hash
	p.SetAnnotations(ann)
	it.payload, it.hash = p, hash
	return nil
}

// validateRequest checks what does not depend on the cluster.
func validateRequest(req Request) error {
	if errs := validation.IsDNS1123Label(req.Environment); len(errs) > 0 {
		return fmt.Errorf("environment %q: not a DNS label: %v", req.Environment, errs)
	}
	switch req.Drift {
	case "", DriftCorrect, DriftDetectOnly:
	default:
		return fmt.Errorf("environment %s: unknown drift mode %q (want %q or %q)", req.Environment, req.Drift, DriftCorrect, DriftDetectOnly)
	}
	if req.DefaultNamespace != "" {
		if errs := validation.IsDNS1123Label(req.DefaultNamespace); len(errs) > 0 {
			return fmt.Errorf("environment %s: default namespace %q: %v", req.Environment, req.DefaultNamespace, errs)
		}
	}
	if err := validateIgnoreRules(req.Ignore); err != nil {
		return fmt.Errorf("environment %s: %w", req.Environment, err)
	}
	if err := validateScope(req.Scope); err != nil {
		return fmt.Errorf("environment %s: %w", req.Environment, err)
	}
	if sa := req.ServiceAccount; sa != nil {
		if err := sa.Validate(); err != nil {
			return fmt.Errorf("environment %s: %w", req.Environment, err)
		}
	}
	return nil
}

// memoMapper remembers the answers of one plan: discovery's mapper searches
// every group on each call, and a desired set repeats a few kinds many times.
// It is used by one goroutine only.
type memoMapper struct {
	next mapper
	seen map[schema.GroupVersionKind]memoEntry
}

type memoEntry struct {
	m   *meta.RESTMapping
	err error
}

func (mm *memoMapper) RESTMappingWithContext(ctx context.Context, gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	if len(versions) != 1 {
		return mm.next.RESTMappingWithContext(ctx, gk, versions...)
	}
	key := gk.WithVersion(versions[0])
	if e, ok := mm.seen[key]; ok {
		return e.m, e.err
	}
	m, err := mm.next.RESTMappingWithContext(ctx, gk, versions...)
	mm.seen[key] = memoEntry{m, err}
	return m, err
}

// ResetWithContext resets the underlying mapper and forgets every answer.
func (mm *memoMapper) ResetWithContext(ctx context.Context) {
	if r, ok := mm.next.(resettable); ok {
		r.ResetWithContext(ctx)
	}
	clear(mm.seen)
}
