package reconciler

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
)

// watchCache keeps a watch on the objects each environment manages — one
// informer per environment, resource and namespace, selected by the
// baton.dev/environment label — so that a pass sees unchanged objects
// without a round trip.
//
// What it guarantees: an answer is the state of a watch that was in sync at
// some point; it may lag the server by the watch delay, and during an API
// server outage by the outage. A stale answer can only make a pass do an
// unnecessary apply (which the server turns into a no-op) or notice drift one
// pass late; it never makes a pass skip a change in git, because a change in
// git changes the desired hash, which the cached object then lacks.
//
// Objects without baton's environment label (made by kubectl, or by another
// tool) are invisible to it; a pass reads those with a GET.
type watchCache struct {
	dyn         dynamic.Interface
	log         *slog.Logger
	syncTimeout time.Duration
	// retry is when a watch RBAC refused is tried again (see cachelife.go).
	retry retryPolicy
	// ctx lives until Close; every informer runs under it.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex // guards entries
	entries map[cacheKey]*cacheEntry
}

type cacheKey struct {
	env       string
	gvr       schema.GroupVersionResource
	namespace string // "" for cluster-scoped resources
}

type cacheEntry struct {
	informer cache.SharedIndexInformer
	// ready is closed once the first list finished, failed for good, or took
	// longer than syncTimeout.
	ready chan struct{}
	// forbidden is set when RBAC refuses the list or watch; the informer is
	// then stopped and lookups fall back to GETs until it is retried.
	forbidden atomic.Bool
	stop      context.CancelFunc
	// life is what the entry's lifecycle needs: the versions the watch
	// delivered, and when a refused watch is retried (cachelife.go).
	life entryLife
}

func newWatchCache(dyn dynamic.Interface, log *slog.Logger, syncTimeout time.Duration, retry retryPolicy) *watchCache {
	ctx, cancel := context.WithCancel(context.Background())
	return &watchCache{dyn: dyn, log: log, syncTimeout: syncTimeout, retry: retry, ctx: ctx, cancel: cancel,
		entries: make(map[cacheKey]*cacheEntry)}
}

// close stops every informer.
func (c *watchCache) close() { c.cancel() }

// lookup returns the cached object and ok == true when the cache can answer
// (obj == nil then means the object does not exist with baton's label), or
// ok == false when the caller must ask the server. The object is shared:
// callers must not modify it.
func (c *watchCache) lookup(ctx context.Context, env string, gvr schema.GroupVersionResource, namespace, name string) (obj *unstructured.Unstructured, ok bool) {
	e := c.entry(env, gvr, namespace)
	select {
	case <-e.ready:
	case <-ctx.Done():
		return nil, false
	}
	if e.forbidden.Load() || !e.informer.HasSynced() {
		return nil, false
	}
	key := name
	if namespace != "" {
		key = namespace + "/" + name
	}
	item, exists, err := e.informer.GetStore().GetByKey(key)
	if err != nil || !exists {
		return nil, err == nil
	}
	u, isU := item.(*unstructured.Unstructured)
	return u, isU
}

// remember stores the answer of an apply, so that the next pass does not
// depend on the watch having delivered it yet. It never replaces a newer
// state the watch delivered (see entryLife.remember).
func (c *watchCache) remember(env string, gvr schema.GroupVersionResource, obj *unstructured.Unstructured) {
	c.mu.Lock()
	e := c.entries[cacheKey{env, gvr, obj.GetNamespace()}]
	c.mu.Unlock()
	if e == nil || e.forbidden.Load() || !e.informer.HasSynced() {
		return
	}
	e.life.remember(e.informer.GetStore(), slimManagedFields(obj.DeepCopy()))
}

// entry returns the informer for key, starting it on first use, and again
// when RBAC refused it and its retry time has come.
func (c *watchCache) entry(env string, gvr schema.GroupVersionResource, namespace string) *cacheEntry {
	key := cacheKey{env, gvr, namespace}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if ok && !c.retryDueLocked(e) {
		return e
	}
	refusals := 0
	if ok {
		refusals = e.life.refusals
	}
	selector := metav1.FormatLabelSelector(&metav1.LabelSelector{MatchLabels: map[string]string{LabelEnvironment: env}})
	inf := dynamicinformer.NewFilteredDynamicInformer(c.dyn, gvr, namespace, 0, cache.Indexers{},
		func(o *metav1.ListOptions) { o.LabelSelector = selector }).Informer()
	ctx, stop := context.WithCancel(c.ctx)
	e = &cacheEntry{informer: inf, ready: make(chan struct{}), stop: stop, life: entryLife{refusals: refusals}}
	_ = inf.SetTransform(func(o any) (any, error) {
		if u, ok := o.(*unstructured.Unstructured); ok {
			e.life.delivered(u)
			return slimManagedFields(u), nil
		}
		return o, nil
	})
	_ = inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		if apierrors.IsForbidden(err) && !e.forbidden.Load() {
			retryIn := c.refused(e)
			e.forbidden.Store(true)
			c.log.Info("watch cache off for a resource: list/watch denied, using GETs until it is tried again",
				"resource", qualifiedResource(gvr), "namespace", namespace, "retryIn", retryIn.String(), "error", err)
			stop()
		}
	})
	go inf.RunWithContext(ctx)
	go c.awaitSync(ctx, e)
	c.entries[key] = e
	return e
}

// awaitSync closes e.ready once the informer has synced, was refused, or
// syncTimeout passed (an API server outage must not stall a pass; lookups
// then fall back to GETs until the informer catches up).
func (c *watchCache) awaitSync(ctx context.Context, e *cacheEntry) {
	defer close(e.ready)
	deadline := time.NewTimer(c.syncTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !e.informer.HasSynced() && !e.forbidden.Load() {
		select {
		case <-tick.C:
		case <-deadline.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// slimManagedFields drops the field sets from managedFields: they are most
// of an object's size and a pass needs only the managers' names from the
// cache (to spot objects to adopt from kubectl); it reads full managedFields
// with a GET when it adopts.
func slimManagedFields(u *unstructured.Unstructured) *unstructured.Unstructured {
	mf := u.GetManagedFields()
	if len(mf) == 0 {
		return u
	}
	for i := range mf {
		mf[i].FieldsV1 = nil
	}
	u.SetManagedFields(mf)
	return u
}
