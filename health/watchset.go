package health

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"
)

// watchSet follows one set of objects for one Wait, Monitor or Check: an
// informer per resource type and namespace for the objects themselves, and
// per namespace holding a workload, informers for its pods, ReplicaSets and
// Warning events, which the Finder reads through cacheReader.
//
// The cost of following grows with what changes, not with what is
// followed: a watch event marks only the objects it concerns (an object
// itself; a pod, its ReplicaSet and their Deployment through the controller
// references), an evaluation round evaluates only the marked objects, and
// while events keep coming the next round waits a multiple of what the
// last one cost (see roundGapFactor), so the events of a burst that arrive
// meanwhile cost one evaluation per object.
//
// The informers' goroutines only mark and signal; everything else runs on
// the goroutine that created the watchSet (Wait's, Monitor's or Check's),
// so only index and dirty need a lock.
type watchSet struct {
	c       *Checker
	opts    EvalOptions
	targets []*target
	health  []ObjectHealth // by target index, as last evaluated
	finder  *Finder

	informers  map[informerKey]*objectInformer
	namespaces map[string]*namespaceCache
	synced     bool // every resolved target's informer has listed, as of the last check

	mu    sync.Mutex              // guards index, dirty and target.dirty, shared with the informers' handlers
	index map[objectKey][]*target // the targets attached to an informer, by what they are
	dirty []*target               // marked since the last round, each once

	// changed holds one pending "something was marked"; a burst of watch
	// events collapses into one round.
	changed    chan struct{}
	roundStart time.Time   // when the round in progress started; zero between rounds
	notBefore  time.Time   // when the next round may start
	hold       *time.Timer // delays a round to notBefore
	ctx        context.Context
	cancel     context.CancelFunc
	wg         sync.WaitGroup // the informer goroutines started by objectInformer
	// unsubscribe ends the watchSet's use of shared watches (shared.go).
	unsubscribe []func()
}

// target is one object followed.
type target struct {
	ref       ObjectRef
	index     int    // in watchSet.targets and watchSet.health
	namespace string // ref.Namespace, or "" for a cluster-scoped kind
	gvr       schema.GroupVersionResource
	gk        schema.GroupKind
	inf       *objectInformer // nil until the kind resolves
	err       error           // why inf is nil
	readyAt   time.Time
	dirty     bool // in watchSet.dirty; guarded by watchSet.mu
}

// key is the object's key in its informer's store.
func (t *target) key() string {
	if t.namespace == "" {
		return t.ref.Name
	}
	return t.namespace + "/" + t.ref.Name
}

// objectKey names an object as watch events and controller references do.
type objectKey struct {
	group, kind, namespace, name string
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
	store  cache.Store
	synced cache.DoneChecker // the handler's, so "synced" means "marked"
	// gvk is set for a metadata-only informer, whose objects carry no
	// kind of their own.
	gvk schema.GroupVersionKind

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
		health:     make([]ObjectHealth, len(refs)),
		informers:  map[informerKey]*objectInformer{},
		namespaces: map[string]*namespaceCache{},
		index:      map[objectKey][]*target{},
		changed:    make(chan struct{}, 1),
		hold:       time.NewTimer(time.Hour),
	}
	w.hold.Stop()
	w.ctx, w.cancel = context.WithCancel(ctx)
	w.finder = NewFinder(cacheReader{w: w})

	reset := false
	for i, ref := range refs {
		t := &target{ref: ref, index: i}
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
	// Every object is evaluated in the first round, once the informers
	// have listed (rounds wait for that); with no informer (no objects, or
	// none resolved) this signal is what triggers it.
	w.markWhere(func(*target) bool { return true })
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
	t.inf = w.objectInformer(k, t.gk.WithVersion(t.gvr.Version))
	w.synced = false
	w.mu.Lock()
	key := objectKey{group: t.gk.Group, kind: t.gk.Kind, namespace: t.namespace, name: t.ref.Name}
	w.index[key] = append(w.index[key], t)
	w.mu.Unlock()
	// Its first evaluation must not wait for a change: the object may not
	// exist, or its informer may have listed it already. Rounds wait until
	// every informer has listed, so the mark holds until then.
	w.mark(key)
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
		}
	}
}

// objectInformer returns the informer for k, starting it on first use:
// through the metadata API for kinds without a status, the dynamic client
// otherwise.
func (w *watchSet) objectInformer(k informerKey, gvk schema.GroupVersionKind) *objectInformer {
	if oi, ok := w.informers[k]; ok {
		return oi
	}
	tweak := func(o *metav1.ListOptions) {
		if k.name != "" {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", k.name).String()
		}
	}
	if oi := w.sharedObject(k, gvk); oi != nil {
		w.informers[k] = oi
		w.signalWhenSynced(oi)
		return oi
	}
	oi := &objectInformer{}
	l := lister{tweak: tweak, failed: func(err error) {
		oi.setErr(err)
		w.c.log.Warn("health: watch failed, retrying", "resource", k.gvr.String(), "namespace", k.namespace, "error", err)
	}}
	objType := w.objectLister(&l, k.gvr, k.namespace, gvk)
	if metadataOnlyKinds[gvk.GroupKind()] {
		oi.gvk = gvk
	}
	gk := gvk.GroupKind()
	wc := newWatch(l, objType, nil, trimObject, markHandler(func(obj any) {
		if m, err := meta.Accessor(obj); err == nil {
			w.mark(objectKey{group: gk.Group, kind: gk.Kind, namespace: m.GetNamespace(), name: m.GetName()})
		}
	}))
	oi.store, oi.synced = wc.store, wc.synced
	w.informers[k] = oi
	w.start(wc)
	w.signalWhenSynced(oi)
	return oi
}

// objectLister sets l to list and watch gvr in namespace ("" for all):
// through the metadata API for kinds without a status, the dynamic client
// otherwise. It returns the type of the objects listed.
func (w *watchSet) objectLister(l *lister, gvr schema.GroupVersionResource, namespace string, gvk schema.GroupVersionKind) runtime.Object {
	if metadataOnlyKinds[gvk.GroupKind()] {
		r := w.c.meta.Resource(gvr).Namespace(namespace)
		l.client = w.c.meta
		l.list = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return r.List(ctx, o) }
		l.watch = r.Watch
		return &metav1.PartialObjectMetadata{}
	}
	r := w.c.dyn.Resource(gvr).Namespace(namespace)
	l.client = w.c.dyn
	l.list = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return r.List(ctx, o) }
	l.watch = r.Watch
	return &unstructured.Unstructured{}
}

// signalWhenSynced signals once oi has listed: the first list may bring
// nothing (the object is missing), and the round its targets' marks wait
// for must happen.
func (w *watchSet) signalWhenSynced(oi *objectInformer) {
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		select {
		case <-oi.synced.Done():
			w.signal()
		case <-w.ctx.Done():
		}
	}()
}

// targetsSynced reports whether every resolved object's informer has
// delivered its first list: before that, an absent object only means "not
// listed yet".
func (w *watchSet) targetsSynced() bool {
	if w.synced {
		return true
	}
	for _, t := range w.targets {
		if t.inf != nil && !cache.IsDone(t.inf.synced) {
			return false
		}
	}
	w.synced = true
	return true
}

// waitSynced waits until the object informers and the namespace caches have
// their first lists, or ctx ends (false).
func (w *watchSet) waitSynced(ctx context.Context) bool {
	var synced []cache.DoneChecker
	for _, oi := range w.informers {
		synced = append(synced, oi.synced)
	}
	for _, nc := range w.namespaces {
		synced = append(synced, nc.synced...)
	}
	for _, s := range synced {
		select {
		case <-s.Done():
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// close stops the informers and waits for their goroutines.
func (w *watchSet) close() {
	w.cancel()
	w.hold.Stop()
	w.wg.Wait()
	for _, u := range w.unsubscribe {
		u()
	}
}
