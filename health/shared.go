package health

import (
	"context"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"
)

// sharedWatches serve every watchSet of a Checker from one watch per kind
// across all namespaces (CheckerOptions.SharedLabel): the followed objects
// of each resource type, selected by the label they all carry, and the
// pods, ReplicaSets and Warning events the Finder reads. With a monitor
// per environment, per-namespace watches cost seven watches (and their
// goroutines and buffers) per environment; shared ones cost seven in all,
// plus the objects they hold, trimmed. An event reaches only the watchSets
// following its namespace.
//
// A watch lives while a watchSet uses it. A kind whose list across all
// namespaces RBAC refuses is watched per namespace, by each watchSet, as
// without sharing.
type sharedWatches struct {
	c     *Checker
	label string

	mu      sync.Mutex // guards watches and refused
	watches map[sharedKey]*sharedWatch
	refused map[sharedKey]bool
}

// sharedKey names a shared watch: a followed resource type, or one of the
// Finder's kinds.
type sharedKey struct {
	gvr  schema.GroupVersionResource
	role string // "object", "pods", "replicasets" or "events"
}

type sharedWatch struct {
	wc *watchedCache
	// oi is the watch as an objectInformer, for followed objects.
	oi     *objectInformer
	cancel context.CancelFunc
	done   chan struct{}
	users  int // guarded by sharedWatches.mu

	mu   sync.RWMutex // guards subs
	subs map[string]map[*watchSet]func(any)
}

func newSharedWatches(c *Checker, label string) *sharedWatches {
	return &sharedWatches{c: c, label: label, watches: map[sharedKey]*sharedWatch{}, refused: map[sharedKey]bool{}}
}

// dispatch hands a watch event to the watchSets following its namespace.
func (sw *sharedWatch) dispatch(obj any) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	sw.mu.RLock()
	marks := make([]func(any), 0, len(sw.subs[m.GetNamespace()]))
	for _, mark := range sw.subs[m.GetNamespace()] {
		marks = append(marks, mark)
	}
	sw.mu.RUnlock()
	for _, mark := range marks {
		mark(obj)
	}
}

// probeTimeout bounds the list that tells whether RBAC allows a watch
// across all namespaces.
const probeTimeout = 10 * time.Second

// acquire returns the shared watch of key for w, starting it on first
// use; nil when the kind is watched per namespace (RBAC refused, or the
// probe failed this time). w holds it until it closes; attach then routes
// ns's events to w.
func (s *sharedWatches) acquire(w *watchSet, key sharedKey, ns string, l lister, objType runtime.Object,
	indexers cache.Indexers, transform cache.TransformFunc, gvk schema.GroupVersionKind) *sharedWatch {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refused[key] {
		return nil
	}
	sw := s.watches[key]
	if sw == nil {
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		o := metav1.ListOptions{Limit: 1}
		if l.tweak != nil {
			l.tweak(&o)
		}
		_, err := l.list(ctx, o)
		cancel()
		if apierrors.IsForbidden(err) {
			s.refused[key] = true
			s.c.log.Info("health: watching per namespace: RBAC refuses a list across namespaces", "resource", key.gvr.String(), "role", key.role)
			return nil
		} else if err != nil {
			return nil
		}
		sw = &sharedWatch{subs: map[string]map[*watchSet]func(any){}, done: make(chan struct{})}
		oi := &objectInformer{}
		if metadataOnlyKinds[gvk.GroupKind()] {
			oi.gvk = gvk // a metadata-only watch's objects carry no kind
		}
		l.failed = func(err error) {
			oi.setErr(err)
			s.c.log.Warn("health: shared watch failed, retrying", "resource", key.gvr.String(), "role", key.role, "error", err)
		}
		sw.wc = newWatch(l, objType, indexers, transform, markHandler(sw.dispatch))
		oi.store, oi.synced = sw.wc.store, sw.wc.synced
		sw.oi = oi
		var runCtx context.Context
		runCtx, sw.cancel = context.WithCancel(context.Background())
		go func() {
			defer close(sw.done)
			sw.wc.ctrl.RunWithContext(runCtx)
		}()
		s.watches[key] = sw
	}
	sw.users++
	w.unsubscribe = append(w.unsubscribe, func() { s.release(key, sw, ns, w) })
	return sw
}

// attach routes the events of namespace ns to w's mark.
func (sw *sharedWatch) attach(w *watchSet, ns string, mark func(any)) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.subs[ns] == nil {
		sw.subs[ns] = map[*watchSet]func(any){}
	}
	sw.subs[ns][w] = mark
}

// release ends w's subscription; the last one stops the watch.
func (s *sharedWatches) release(key sharedKey, sw *sharedWatch, ns string, w *watchSet) {
	sw.mu.Lock()
	delete(sw.subs[ns], w)
	if len(sw.subs[ns]) == 0 {
		delete(sw.subs, ns)
	}
	sw.mu.Unlock()
	s.mu.Lock()
	sw.users--
	last := sw.users == 0
	if last {
		delete(s.watches, key)
	}
	s.mu.Unlock()
	if last {
		sw.cancel()
		<-sw.done
	}
}

// sharedObject returns the shared watch of k's resource type for w, or nil
// when w must watch k itself: no sharing, a cluster-scoped kind, or RBAC.
func (w *watchSet) sharedObject(k informerKey, gvk schema.GroupVersionKind) *objectInformer {
	s := w.c.shared
	if s == nil || k.namespace == "" {
		return nil
	}
	l := lister{tweak: func(o *metav1.ListOptions) { o.LabelSelector = s.label }}
	objType := w.objectLister(&l, k.gvr, "", gvk)
	gk := gvk.GroupKind()
	sw := s.acquire(w, sharedKey{gvr: k.gvr, role: "object"}, k.namespace, l, objType, nil, trimObject, gvk)
	if sw == nil {
		return nil
	}
	sw.attach(w, k.namespace, func(obj any) {
		if m, err := meta.Accessor(obj); err == nil {
			w.mark(objectKey{group: gk.Group, kind: gk.Kind, namespace: m.GetNamespace(), name: m.GetName()})
		}
	})
	return sw.oi
}

// sharedNamespace returns ns's pods, ReplicaSets and Warning events from
// the shared watches, or nil when w must watch them itself.
func (w *watchSet) sharedNamespace(ns string) *namespaceCache {
	s := w.c.shared
	if s == nil {
		return nil
	}
	l := namespaceListers(w.c.kube, "")
	pods := s.acquire(w, sharedKey{role: "pods"}, ns, l.pods, &corev1.Pod{},
		cache.Indexers{controllerIndex: byController}, trimPod, schema.GroupVersionKind{})
	if pods == nil {
		return nil
	}
	rss := s.acquire(w, sharedKey{role: "replicasets"}, ns, l.rss, &appsv1.ReplicaSet{},
		cache.Indexers{controllerIndex: byController}, trimReplicaSet, schema.GroupVersionKind{})
	if rss == nil {
		return nil
	}
	events := s.acquire(w, sharedKey{role: "events"}, ns, l.events, &corev1.Event{},
		cache.Indexers{involvedIndex: byInvolved}, trimEvent, schema.GroupVersionKind{})
	if events == nil {
		return nil
	}
	// The caches are set before any event can reach the marks.
	nc := &namespaceCache{pods: pods.wc.store, rss: rss.wc.store, events: events.wc.store,
		synced: []cache.DoneChecker{pods.wc.synced, rss.wc.synced, events.wc.synced}}
	pods.attach(w, ns, func(obj any) { w.markPod(nc, obj) })
	rss.attach(w, ns, func(obj any) { w.markReplicaSet(nc, obj) })
	events.attach(w, ns, func(obj any) { w.markEvent(nc, obj) })
	return nc
}
