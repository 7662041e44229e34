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
	"k8s.io/client-go/metadata/metadatainformer"
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
// rounds are at least minRoundGap apart while events keep coming, so a
// burst of events about one object costs one evaluation.
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
	changed   chan struct{}
	lastRound time.Time   // when the last round started, by the real clock
	hold      *time.Timer // delays a round to minRoundGap after the last
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup // the informer goroutines started by objectInformer
}

// minRoundGap is the least time between two evaluation rounds while watch
// events keep coming: a rollout updates each pod several times a second,
// and one round per gap evaluates each object once for all of them. The
// first event after a quiet spell is evaluated at once.
const minRoundGap = 100 * time.Millisecond

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
	informer cache.SharedIndexInformer
	synced   cache.InformerSynced // the handler's, so "synced" means "marked"
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
	oi := &objectInformer{}
	if metadataOnlyKinds[gvk.GroupKind()] {
		oi.gvk = gvk
		oi.informer = metadatainformer.NewFilteredMetadataInformer(w.c.meta, k.gvr, k.namespace, 0, cache.Indexers{}, tweak).Informer()
	} else {
		oi.informer = dynamicinformer.NewFilteredDynamicInformer(w.c.dyn, k.gvr, k.namespace, 0, cache.Indexers{}, tweak).Informer()
	}
	inf := oi.informer
	_ = inf.SetTransform(trimObject)
	_ = inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		oi.setErr(err)
		if !errors.Is(err, context.Canceled) {
			w.c.log.Warn("health: watch failed, retrying", "resource", k.gvr.String(), "namespace", k.namespace, "error", err)
		}
	})
	gk := gvk.GroupKind()
	reg, _ := inf.AddEventHandler(markHandler(func(obj any) {
		if m, err := meta.Accessor(obj); err == nil {
			w.mark(objectKey{group: gk.Group, kind: gk.Kind, namespace: m.GetNamespace(), name: m.GetName()})
		}
	}))
	oi.synced = reg.HasSynced
	w.informers[k] = oi
	w.wg.Add(2)
	go func() {
		defer w.wg.Done()
		inf.RunWithContext(w.ctx)
	}()
	go func() {
		// The first list may bring nothing (the object is missing): signal
		// once it is in, so that the round its targets' marks wait for
		// happens.
		defer w.wg.Done()
		if cache.WaitForCacheSync(w.ctx.Done(), reg.HasSynced) {
			w.signal()
		}
	}()
	return oi
}

// mark queues the followed objects with these keys for the next round.
func (w *watchSet) mark(keys ...objectKey) {
	w.mu.Lock()
	marked := false
	for _, k := range keys {
		for _, t := range w.index[k] {
			marked = w.markLocked(t) || marked
		}
	}
	w.mu.Unlock()
	if marked {
		w.signal()
	}
}

func (w *watchSet) markLocked(t *target) bool {
	if t.dirty {
		return false
	}
	t.dirty = true
	w.dirty = append(w.dirty, t)
	return true
}

// markWhere queues the targets for which pick is true.
func (w *watchSet) markWhere(pick func(*target) bool) {
	w.mu.Lock()
	for _, t := range w.targets {
		if pick(t) {
			w.markLocked(t)
		}
	}
	w.mu.Unlock()
}

// markTimeSensitive queues the objects whose evaluation may change with
// time alone: those not Current, or Current with a cause (a recent OOM
// kill, which ages out). A healthy environment has none, so a resync of
// one costs nothing.
func (w *watchSet) markTimeSensitive() {
	w.markWhere(func(t *target) bool {
		h := w.health[t.index]
		return h.Status != Current || h.Cause != NoCause
	})
}

func (w *watchSet) signal() {
	select {
	case w.changed <- struct{}{}:
	default: // a round is already pending
	}
}

// wake says why next returned.
type wake int

const (
	wakeRound   wake = iota // objects were marked, or a resync is due
	wakeTimeout             // the timeout channel fired
	wakeCancel              // ctx ended
)

// next blocks until the next round is due: after a change (at least
// minRoundGap after the last round) or a resync (which retries unresolved
// kinds and marks the time-sensitive objects), or until timeout fires or
// ctx ends.
func (w *watchSet) next(ctx context.Context, timeout, resync <-chan time.Time) wake {
	pending := false
	for {
		var hold <-chan time.Time
		if pending {
			wait := minRoundGap - time.Since(w.lastRound)
			if wait <= 0 {
				w.lastRound = time.Now()
				return wakeRound
			}
			w.hold.Reset(wait)
			hold = w.hold.C
		}
		select {
		case <-ctx.Done():
			return wakeCancel
		case <-timeout:
			return wakeTimeout
		case <-w.changed:
			pending = true
		case <-resync:
			w.retryUnresolved()
			w.markTimeSensitive()
			pending = true
		case <-hold:
		}
	}
}

// targetsSynced reports whether every resolved object's informer has
// delivered its first list: before that, an absent object only means "not
// listed yet".
func (w *watchSet) targetsSynced() bool {
	if w.synced {
		return true
	}
	for _, t := range w.targets {
		if t.inf != nil && !t.inf.synced() {
			return false
		}
	}
	w.synced = true
	return true
}

// waitSynced waits until the object informers and the namespace caches have
// their first lists, or ctx ends (false).
func (w *watchSet) waitSynced(ctx context.Context) bool {
	var synced []cache.InformerSynced
	for _, oi := range w.informers {
		synced = append(synced, oi.synced)
	}
	for _, nc := range w.namespaces {
		synced = append(synced, nc.synced...)
	}
	return cache.WaitForCacheSync(ctx.Done(), synced...)
}

// close stops the informers and waits for their goroutines.
func (w *watchSet) close() {
	w.cancel()
	w.hold.Stop()
	for _, nc := range w.namespaces {
		nc.shutdown()
	}
	w.wg.Wait()
}

// evaluate evaluates the objects marked since the last round (all of them
// in the first) and reports whether the health of any changed. now comes
// from the Checker's clock once per round, so every object in one report
// is judged at the same instant.
func (w *watchSet) evaluate(ctx context.Context) bool {
	w.mu.Lock()
	batch := w.dirty
	w.dirty = nil
	for _, t := range batch {
		t.dirty = false
	}
	w.mu.Unlock()

	now := w.c.now()
	changed := false
	for _, t := range batch {
		oh := w.evaluateOne(ctx, t, now)
		if oh.Status == Current {
			if t.readyAt.IsZero() {
				t.readyAt = now
			}
		} else {
			t.readyAt = time.Time{}
		}
		oh.ReadyAt = t.readyAt
		prev := w.health[t.index]
		changed = changed || prev.Status != oh.Status || prev.Cause != oh.Cause || prev.Message != oh.Message
		w.health[t.index] = oh
	}
	return changed
}

func (w *watchSet) evaluateOne(ctx context.Context, t *target, now time.Time) ObjectHealth {
	if w.c.evaluated != nil {
		w.c.evaluated(t.ref)
	}
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
	var obj *unstructured.Unstructured
	switch o := item.(type) {
	case *unstructured.Unstructured:
		obj = o
	case *metav1.PartialObjectMetadata:
		obj = metadataObject(o, t.inf.gvk)
	default:
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

// summary is what a report says overall.
type summary struct {
	overall Overall
	cause   Cause
	message string
}

func summaryOf(objects []ObjectHealth) summary {
	overall, cause, msg := summarize(objects)
	return summary{overall: overall, cause: cause, message: msg}
}

// report builds the report of the objects' present health.
func (w *watchSet) report(v *verdict, started time.Time) Report {
	objects := make([]ObjectHealth, len(w.health))
	copy(objects, w.health)
	overall, cause, msg := summarize(objects)
	return Report{Overall: overall, Objects: objects, Cause: cause, Message: msg, Started: started, Since: v.since}
}
