package health

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
)

// watchSet follows one set of objects for one Wait, Monitor or Check: an
// informer per resource type and namespace for the objects themselves, and
// per namespace holding a workload, informers for its pods, ReplicaSets and
// Warning events, which the Finder reads through cacheReader.
//
// Only the goroutine that created it calls its methods (the informers'
// own goroutines only signal changed), so targets, informers and
// namespaces need no lock.
type watchSet struct {
	c       *Checker
	opts    EvalOptions
	targets []*target
	finder  *Finder

	informers  map[informerKey]*objectInformer
	namespaces map[string]*namespaceCache

	// changed holds one pending "something changed, evaluate again"; a
	// burst of watch events collapses into one evaluation.
	changed chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup // the informer goroutines started by objectInformer
}

// target is one object followed.
type target struct {
	ref       ObjectRef
	namespace string // ref.Namespace, or "" for a cluster-scoped kind
	gvr       schema.GroupVersionResource
	gk        schema.GroupKind
	inf       *objectInformer // nil until the kind resolves
	err       error           // why inf is nil
	readyAt   time.Time
}

// key is the object's key in its informer's store.
func (t *target) key() string {
	if t.namespace == "" {
		return t.ref.Name
	}
	return t.namespace + "/" + t.ref.Name
}

// informerKey identifies an informer: one resource type in one namespace,
// narrowed to one name when only one object of that type is followed there
// (a field selector keeps the cache to that object).
type informerKey struct {
	gvr       schema.GroupVersionResource
	namespace string
	name      string // "" for every object of the type in the namespace
}

type objectInformer struct {
	informer cache.SharedIndexInformer
	synced   cache.InformerSynced // the handler's, so "synced" means "signalled"

	mu      sync.Mutex // guards lastErr, written by the reflector's goroutine
	lastErr error
}

func (oi *objectInformer) setErr(err error) {
	oi.mu.Lock()
	defer oi.mu.Unlock()
	oi.lastErr = err
}

func (oi *objectInformer) err() error {
	oi.mu.Lock()
	defer oi.mu.Unlock()
	return oi.lastErr
}

// watch validates refs, resolves their kinds and starts the informers. A
// kind the cluster does not serve yet (a CRD just applied) is not an error:
// its object reads Unknown and the kind is retried at every resync. A
// reference without kind or name, or without namespace for a namespaced
// kind, is.
func (c *Checker) watch(ctx context.Context, refs []ObjectRef, opts EvalOptions) (*watchSet, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	for i, ref := range refs {
		if ref.Kind == "" || ref.Name == "" {
			return nil, fmt.Errorf("object %d (%s): kind and name are required", i, ref)
		}
	}
	w := &watchSet{
		c:          c,
		opts:       opts,
		informers:  map[informerKey]*objectInformer{},
		namespaces: map[string]*namespaceCache{},
		changed:    make(chan struct{}, 1),
	}
	w.ctx, w.cancel = context.WithCancel(ctx)
	w.finder = NewFinder(cacheReader{w: w})

	reset := false
	for _, ref := range refs {
		t := &target{ref: ref}
		if err := w.resolve(t, &reset); err != nil {
			w.close()
			return nil, err
		}
		w.targets = append(w.targets, t)
	}
	// One informer per type and namespace; narrowed to the name when it
	// follows a single object.
	names := map[informerKey]map[string]bool{}
	for _, t := range w.targets {
		if t.err != nil {
			continue
		}
		k := informerKey{gvr: t.gvr, namespace: t.namespace}
		if names[k] == nil {
			names[k] = map[string]bool{}
		}
		names[k][t.ref.Name] = true
	}
	for _, t := range w.targets {
		if t.err == nil {
			w.attach(t, len(names[informerKey{gvr: t.gvr, namespace: t.namespace}]) == 1)
		}
	}
	// A first evaluation at once: with no informer (no objects, or none
	// resolved) nothing else would trigger one before the first resync.
	w.signal()
	return w, nil
}

// resolve maps t's kind to a resource. A kind not found is retried once
// after resetting the mapper's discovery cache (at most once per round, as
// reset says), then left for the next round.
func (w *watchSet) resolve(t *target, reset *bool) error {
	gk := schema.GroupKind{Group: t.ref.Group, Kind: t.ref.Kind}
	var versions []string
	if t.ref.Version != "" {
		versions = append(versions, t.ref.Version)
	}
	m, err := w.c.mapper.RESTMapping(gk, versions...)
	if meta.IsNoMatchError(err) && !*reset {
		w.c.mapper.Reset()
		*reset = true
		m, err = w.c.mapper.RESTMapping(gk, versions...)
	}
	if err != nil {
		t.err = fmt.Errorf("%s: resolve kind: %w", t.ref, err)
		return nil
	}
	namespaced := m.Scope.Name() == meta.RESTScopeNameNamespace
	if namespaced && t.ref.Namespace == "" {
		return fmt.Errorf("%s: namespace is required for the namespaced kind %s", t.ref, gk)
	}
	t.err = nil
	t.gvr, t.gk = m.Resource, gk
	if namespaced {
		t.namespace = t.ref.Namespace
	}
	return nil
}

// attach gives a resolved target its informer, and its namespace the pod,
// ReplicaSet and event caches if it is a workload.
func (w *watchSet) attach(t *target, byName bool) {
	k := informerKey{gvr: t.gvr, namespace: t.namespace}
	if byName {
		k.name = t.ref.Name
	}
	t.inf = w.objectInformer(k)
	if isWorkload(t.gk.String()) {
		w.namespaceCache(t.namespace)
	}
}

// retryUnresolved resolves again the kinds that failed to resolve, and
// starts informers for those that now do.
func (w *watchSet) retryUnresolved() {
	reset := false
	for _, t := range w.targets {
		if t.inf != nil {
			continue
		}
		if err := w.resolve(t, &reset); err != nil {
			t.err = err // a namespaced kind without namespace: stays unresolved
			continue
		}
		if t.err == nil {
			w.attach(t, true)
			w.signal()
		}
	}
}

func (w *watchSet) objectInformer(k informerKey) *objectInformer {
	if oi, ok := w.informers[k]; ok {
		return oi
	}
	tweak := func(o *metav1.ListOptions) {
		if k.name != "" {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", k.name).String()
		}
	}
	inf := dynamicinformer.NewFilteredDynamicInformer(w.c.dyn, k.gvr, k.namespace, 0, cache.Indexers{}, tweak).Informer()
	oi := &objectInformer{informer: inf}
	_ = inf.SetTransform(stripManagedFields)
	_ = inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		oi.setErr(err)
		if !errors.Is(err, context.Canceled) {
			w.c.log.Warn("health: watch failed, retrying", "resource", k.gvr.String(), "namespace", k.namespace, "error", err)
		}
	})
	reg, _ := inf.AddEventHandler(w.handler())
	oi.synced = reg.HasSynced
	w.informers[k] = oi
	w.wg.Add(2)
	go func() {
		defer w.wg.Done()
		inf.RunWithContext(w.ctx)
	}()
	go func() {
		// The first list may bring nothing (the object is missing): signal
		// once it is in, so the absence gets evaluated.
		defer w.wg.Done()
		if cache.WaitForCacheSync(w.ctx.Done(), reg.HasSynced) {
			w.signal()
		}
	}()
	return oi
}

// handler signals a change on every watch event.
func (w *watchSet) handler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { w.signal() },
		UpdateFunc: func(any, any) { w.signal() },
		DeleteFunc: func(any) { w.signal() },
	}
}

func (w *watchSet) signal() {
	select {
	case w.changed <- struct{}{}:
	default: // an evaluation is already pending
	}
}

// stripManagedFields drops managedFields from cached objects: they are
// often the larger part of an object and status never reads them.
func stripManagedFields(obj any) (any, error) {
	if a, err := meta.Accessor(obj); err == nil {
		a.SetManagedFields(nil)
	}
	return obj, nil
}

// targetsSynced reports whether every resolved object's informer has
// delivered its first list: before that, an absent object only means "not
// listed yet".
func (w *watchSet) targetsSynced() bool {
	for _, t := range w.targets {
		if t.inf != nil && !t.inf.synced() {
			return false
		}
	}
	return true
}

// waitSynced waits until the object informers and the namespace caches have
// their first lists, or ctx ends (false).
func (w *watchSet) waitSynced(ctx context.Context) bool {
	var synced []cache.InformerSynced
	for _, t := range w.targets {
		if t.inf != nil {
			synced = append(synced, t.inf.synced)
		}
	}
	for _, nc := range w.namespaces {
		synced = append(synced, nc.synced...)
	}
	return cache.WaitForCacheSync(ctx.Done(), synced...)
}

// close stops the informers and waits for their goroutines.
func (w *watchSet) close() {
	w.cancel()
	for _, nc := range w.namespaces {
		nc.shutdown()
	}
	w.wg.Wait()
}

// evaluate computes the health of every target from the caches. now comes
// from the Checker's clock once per evaluation, so every object in one
// report is judged at the same instant.
func (w *watchSet) evaluate(ctx context.Context) []ObjectHealth {
	now := w.c.now()
	out := make([]ObjectHealth, len(w.targets))
	for i, t := range w.targets {
		oh := w.evaluateOne(ctx, t, now)
		if oh.Status == Current {
			if t.readyAt.IsZero() {
				t.readyAt = now
			}
		} else {
			t.readyAt = time.Time{}
		}
		oh.ReadyAt = t.readyAt
		out[i] = oh
	}
	return out
}

func (w *watchSet) evaluateOne(ctx context.Context, t *target, now time.Time) ObjectHealth {
	oh := ObjectHealth{Ref: t.ref, Status: Unknown}
	if t.inf == nil {
		oh.Message = t.err.Error()
		return oh
	}
	if !t.inf.synced() {
		oh.Message = t.ref.String() + ": not yet listed"
		if err := t.inf.err(); err != nil {
			oh.Message += ": " + err.Error()
		}
		return oh
	}
	item, exists, err := t.inf.informer.GetStore().GetByKey(t.key())
	if err != nil || !exists {
		oh.Message = t.ref.String() + ": not found"
		return oh
	}
	obj, ok := item.(*unstructured.Unstructured)
	if !ok {
		oh.Message = fmt.Sprintf("%s: unexpected cached type %T", t.ref, item)
		return oh
	}
	res := ComputeWith(obj, w.opts.statusOptions())
	d := Diagnosis{Message: joinNonEmpty(": ", objectName(obj), res.Message)}
	if isWorkload(t.gk.String()) {
		found, err := w.finder.Find(ctx, obj, res, w.opts.diagnoseOptions(now))
		if err != nil {
			w.c.log.Warn("health: cause finder failed", "object", t.ref.String(), "error", err)
		} else {
			d = found
		}
	}
	oh.Status, oh.Message, oh.Cause = res.Status, d.Message, d.Cause
	if d.Certain && res.Status == InProgress {
		oh.Status = Failed
	}
	return oh
}
