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
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
)

// watchCache keeps, for every object an environment manages, the few facts
// a pass needs to skip it without a round trip — and nothing else, so that
// its memory grows with the managed objects only, a few hundred bytes
// each, never with their size or with the rest of the cluster:
//
//   - metadata-only watches (no spec, no status), one per resource across
//     every environment and namespace, selected by baton's environment
//     label; where RBAC refuses a cluster-wide watch (the namespaced RBAC
//     variant), one per resource and namespace;
//   - of each object only its name, namespace, resourceVersion, environment
//     label, desired-hash annotation, deletion mark and whether kubectl's
//     client-side apply owns fields of it (slimObject);
//   - per object, the resourceVersion last verified to carry exactly the
//     desired content: the answer of baton's own apply, or a GET compared
//     field by field (verify).
//
// A pass skips an object when the watched resourceVersion is the verified
// one and the hash is the desired one: nothing changed it since baton knew
// it was right. Otherwise it reads that one object with a GET and
// compares, so drift is still found on the first pass after an edit, at
// the cost of one GET per object changed (by a person, or by a controller
// writing its status) since the last pass.
//
// What it guarantees: an answer is the state of a watch that was in sync
// at some point; it may lag the server by the watch delay, and during an
// API server outage by the outage. A stale answer can only make a pass
// read an object it could have skipped, or notice drift one pass late; it
// never makes a pass skip a change in git, because a change in git changes
// the desired hash.
//
// Objects without baton's environment label (made by kubectl, or by
// another tool) are invisible to it; a pass reads those with a GET.
type watchCache struct {
	md          metadata.Interface
	log         *slog.Logger
	syncTimeout time.Duration
	// retry is when a watch RBAC refused is tried again (see cachelife.go).
	retry retryPolicy
	// ctx lives until Close; every informer runs under it.
	ctx    context.Context
	cancel context.CancelFunc

	mu sync.Mutex // guards entries and perNamespace
	// entries are the watches by resource and namespace ("" for one
	// across all namespaces, or a cluster-scoped resource's).
	entries map[scopeKey]*cacheEntry
	// perNamespace holds the namespaced resources whose cluster-wide watch
	// RBAC refused: they are watched per namespace instead.
	perNamespace map[schema.GroupVersionResource]bool
}

// scopeKey identifies one watch.
type scopeKey struct {
	gvr       schema.GroupVersionResource
	namespace string // "" across all namespaces, or cluster-scoped
}

// cacheKey is what an environment's pass uses of the cache: a resource in
// a namespace ("" for cluster-scoped), for retain.
type cacheKey struct {
	env       string
	gvr       schema.GroupVersionResource
	namespace string
}

type cacheEntry struct {
	key      scopeKey
	informer cache.SharedIndexInformer
	// ready is closed once the first list finished, failed for good, or took
	// longer than syncTimeout.
	ready chan struct{}
	// forbidden is set when RBAC refuses the list or watch; the informer is
	// then stopped and lookups fall back to GETs (or, for a cluster-wide
	// watch, to watches per namespace) until it is retried.
	forbidden atomic.Bool
	stop      context.CancelFunc
	// users are the environments using the watch; guarded by
	// watchCache.mu. The watch stops when the last one is gone (retain).
	users map[string]bool
	// life is what the entry's lifecycle needs: the versions the watch
	// delivered and verified, and when a refused watch is retried
	// (cachelife.go).
	life entryLife
}

func newWatchCache(md metadata.Interface, log *slog.Logger, syncTimeout time.Duration, retry retryPolicy) *watchCache {
	ctx, cancel := context.WithCancel(context.Background())
	return &watchCache{md: md, log: log, syncTimeout: syncTimeout, retry: retry, ctx: ctx, cancel: cancel,
		entries: make(map[scopeKey]*cacheEntry), perNamespace: make(map[schema.GroupVersionResource]bool)}
}

// close stops every informer.
func (c *watchCache) close() { c.cancel() }

// cached is what the cache knows of one object.
type cached struct {
	obj *slimObject
	// verified says obj's resourceVersion is the last one known to carry
	// exactly the desired content of obj's hash.
	verified bool
}

// lookup returns what the cache knows of the object and ok == true when it
// can answer (obj == nil then means the object does not exist with
// baton's environment label), or ok == false when the caller must ask the
// server. An object labelled for another environment is not an answer.
func (c *watchCache) lookup(ctx context.Context, env string, gvr schema.GroupVersionResource, namespace, name string) (obj cached, ok bool) {
	e := c.entryFor(ctx, env, gvr, namespace)
	if e == nil {
		return cached{}, false
	}
	item, exists, err := e.informer.GetStore().GetByKey(storeKey(namespace, name))
	if err != nil {
		return cached{}, false
	}
	if !exists {
		return cached{}, true
	}
	s, isSlim := item.(*slimObject)
	if !isSlim || s.env != env {
		return cached{}, false
	}
	return cached{obj: s, verified: e.life.isVerified(storeKey(namespace, name), s.ResourceVersion)}, true
}

// entryFor returns the synced watch that covers the object's resource in
// namespace for env, or nil when none can answer (refused, not synced in
// time, ctx ended).
func (c *watchCache) entryFor(ctx context.Context, env string, gvr schema.GroupVersionResource, namespace string) *cacheEntry {
	for {
		c.mu.Lock()
		key := scopeKey{gvr: gvr}
		if namespace != "" && c.perNamespace[gvr] {
			key.namespace = namespace
		}
		e := c.entryLocked(key)
		e.users[env] = true
		c.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil
		}
		if e.forbidden.Load() {
			if key.namespace == "" && namespace != "" {
				// No cluster-wide watch: watch this resource per namespace.
				c.mu.Lock()
				c.perNamespace[gvr] = true
				c.mu.Unlock()
				continue
			}
			return nil
		}
		if !e.informer.HasSynced() {
			return nil
		}
		return e
	}
}

// remember records the answer of baton's apply: its version carries the
// desired content, so the next pass need not read the object (see
// entryLife.remember: never over a newer state the watch delivered).
func (c *watchCache) remember(env string, gvr schema.GroupVersionResource, obj metav1.Object) {
	if e := c.syncedEntry(gvr, obj.GetNamespace()); e != nil {
		e.life.remember(e.informer.GetStore(), slim(obj))
	}
}

// verify records that a GET found the object with exactly the desired
// content at its version.
func (c *watchCache) verify(gvr schema.GroupVersionResource, obj metav1.Object) {
	if e := c.syncedEntry(gvr, obj.GetNamespace()); e != nil {
		e.life.verify(storeKey(obj.GetNamespace(), obj.GetName()), obj.GetResourceVersion())
	}
}

func (c *watchCache) syncedEntry(gvr schema.GroupVersionResource, namespace string) *cacheEntry {
	c.mu.Lock()
	key := scopeKey{gvr: gvr}
	if namespace != "" && c.perNamespace[gvr] {
		key.namespace = namespace
	}
	e := c.entries[key]
	c.mu.Unlock()
	if e == nil || e.forbidden.Load() || !e.informer.HasSynced() {
		return nil
	}
	return e
}

// entryLocked returns the watch for key, starting it on first use, and
// again when RBAC refused it and its retry time has come.
func (c *watchCache) entryLocked(key scopeKey) *cacheEntry {
	e, ok := c.entries[key]
	if ok && !c.retryDueLocked(e) {
		return e
	}
	refusals, users := 0, map[string]bool{}
	if ok {
		refusals, users = e.life.refusals, e.users
	}
	inf := metadatainformer.NewFilteredMetadataInformer(c.md, key.gvr, key.namespace, 0, cache.Indexers{},
		func(o *metav1.ListOptions) { o.LabelSelector = LabelEnvironment }).Informer()
	ctx, stop := context.WithCancel(c.ctx)
	e = &cacheEntry{key: key, informer: inf, ready: make(chan struct{}), stop: stop, users: users,
		life: entryLife{refusals: refusals}}
	_ = inf.SetTransform(e.transform)
	_ = inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		if apierrors.IsForbidden(err) && !e.forbidden.Load() {
			retryIn := c.refused(e)
			e.forbidden.Store(true)
			c.log.Info("watch cache off for a resource: list/watch denied, using GETs until it is tried again",
				"resource", qualifiedResource(key.gvr), "namespace", key.namespace, "retryIn", retryIn.String(), "error", err)
			stop()
		}
	})
	go inf.RunWithContext(ctx)
	go c.awaitSync(ctx, e)
	c.entries[key] = e
	return e
}

// transform keeps what the cache needs of a watched object and records
// its version as delivered.
func (e *cacheEntry) transform(o any) (any, error) {
	// The informer may transform an object twice (a relist replays what
	// it holds): a slim one stays as it is.
	if s, ok := o.(*slimObject); ok {
		return s, nil
	}
	if m, ok := o.(metav1.Object); ok {
		s := slim(m)
		e.life.delivered(s)
		return s, nil
	}
	return o, nil
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

func storeKey(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

// slimObject is all the cache keeps of an object: what a pass needs to
// know it may skip it. It is a metav1.Object (its ObjectMeta holds only
// name, namespace, resourceVersion and deletion time) so that the
// informer's store keys it.
type slimObject struct {
	metav1.ObjectMeta
	// env is the baton.dev/environment label, hash the desired-hash
	// annotation.
	env, hash string
	// adopt says a client-side manager owns fields (needsAdoption).
	adopt bool
}

// slim keeps what a pass needs of an object: a watched one
// (PartialObjectMetadata) or an apply's answer (unstructured).
func slim(m metav1.Object) *slimObject {
	s := &slimObject{ObjectMeta: metav1.ObjectMeta{Name: m.GetName(), Namespace: m.GetNamespace(),
		ResourceVersion: m.GetResourceVersion(), DeletionTimestamp: m.GetDeletionTimestamp()},
		env: m.GetLabels()[LabelEnvironment], hash: m.GetAnnotations()[AnnotationDesiredHash]}
	if u, ok := m.(*unstructured.Unstructured); ok {
		s.adopt = needsAdoption(u) // reads the raw map, without converting
		return s
	}
	for _, f := range m.GetManagedFields() {
		if clientSideManagers.Has(f.Manager) && f.Operation == metav1.ManagedFieldsOperationUpdate && f.Subresource == "" {
			s.adopt = true
		}
	}
	return s
}

// GetObjectKind is runtime.Object's: a slimObject has no kind.
func (s *slimObject) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject is runtime.Object's.
func (s *slimObject) DeepCopyObject() runtime.Object {
	c := *s
	c.ObjectMeta = *s.ObjectMeta.DeepCopy()
	return &c
}
