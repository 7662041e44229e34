package health

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// namespaceCache holds what the Finder reads in one namespace: pods,
// ReplicaSets and Warning events, each kept current by a watch, trimmed to
// the fields diagnosis reads (see trim.go) and indexed so that one object's
// evidence is found without scanning the namespace.
type namespaceCache struct {
	pods   cache.Indexer
	rss    cache.Indexer
	events cache.Indexer
	synced []cache.DoneChecker
}

const (
	// controllerIndex indexes pods and ReplicaSets by their controller's
	// UID.
	controllerIndex = "controller"
	// involvedIndex indexes events by "Kind/name" of the object they are
	// about: one pod's events are one lookup.
	involvedIndex = "involved"
)

// involvedKey names the object an event is about; with the namespace,
// since a shared cache holds every namespace's events (sharedWatches).
func involvedKey(namespace, kind, name string) string { return namespace + "/" + kind + "/" + name }

func byController(obj any) ([]string, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, nil
	}
	if ref := metav1.GetControllerOf(m); ref != nil {
		return []string{string(ref.UID)}, nil
	}
	return nil, nil
}

func byInvolved(obj any) ([]string, error) {
	if e, ok := obj.(*corev1.Event); ok {
		return []string{involvedKey(e.Namespace, e.InvolvedObject.Kind, e.InvolvedObject.Name)}, nil
	}
	return nil, nil
}

// namespaceCache returns the caches of ns, starting them on first use.
// Their events mark the followed objects they concern (see markPod).
func (w *watchSet) namespaceCache(ns string) *namespaceCache {
	if nc, ok := w.namespaces[ns]; ok {
		return nc
	}
	if nc := w.sharedNamespace(ns); nc != nil {
		w.namespaces[ns] = nc
		return nc
	}
	nc := &namespaceCache{}
	l := namespaceListers(w.c.kube, ns)
	pods := newWatch(l.pods, &corev1.Pod{}, cache.Indexers{controllerIndex: byController}, trimPod,
		markHandler(func(obj any) { w.markPod(nc, obj) }))
	rss := newWatch(l.rss, &appsv1.ReplicaSet{}, cache.Indexers{controllerIndex: byController}, trimReplicaSet,
		markHandler(func(obj any) { w.markReplicaSet(nc, obj) }))
	events := newWatch(l.events, &corev1.Event{}, cache.Indexers{involvedIndex: byInvolved}, trimEvent,
		markHandler(func(obj any) { w.markEvent(nc, obj) }))
	nc.pods, nc.rss, nc.events = pods.store, rss.store, events.store
	nc.synced = []cache.DoneChecker{pods.synced, rss.synced, events.synced}
	w.start(pods, rss, events)
	w.namespaces[ns] = nc
	return nc
}

// listers of the pods, ReplicaSets and Warning events of ns ("" for
// every namespace).
type nsListers struct{ pods, rss, events lister }

func namespaceListers(kube kubernetes.Interface, ns string) nsListers {
	return nsListers{
		pods: lister{client: kube,
			list: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return kube.CoreV1().Pods(ns).List(ctx, o)
			},
			watch: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				return kube.CoreV1().Pods(ns).Watch(ctx, o)
			}},
		rss: lister{client: kube,
			list: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return kube.AppsV1().ReplicaSets(ns).List(ctx, o)
			},
			watch: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				return kube.AppsV1().ReplicaSets(ns).Watch(ctx, o)
			}},
		// Only Warning events are read; Normal ones (Scheduled, Pulled,
		// Started, ScalingReplicaSet...) are most of the volume.
		events: lister{client: kube,
			tweak: func(o *metav1.ListOptions) {
				o.FieldSelector = fields.OneTermEqualSelector("type", corev1.EventTypeWarning).String()
			},
			list: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return kube.CoreV1().Events(ns).List(ctx, o)
			},
			watch: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				return kube.CoreV1().Events(ns).Watch(ctx, o)
			}},
	}
}

// markHandler calls mark with the object of every watch event, the last
// known state for a deletion.
func markHandler(mark func(any)) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    mark,
		UpdateFunc: func(_, obj any) { mark(obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			mark(obj)
		},
	}
}

// markPod marks a pod if it is followed, and the followed objects that
// control it: its ReplicaSet, and that ReplicaSet's Deployment.
func (w *watchSet) markPod(nc *namespaceCache, obj any) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	keys := []objectKey{{kind: "Pod", namespace: p.Namespace, name: p.Name}}
	keys = nc.appendControllers(keys, p.Namespace, metav1.GetControllerOf(p))
	w.mark(keys...)
}

// markReplicaSet marks a ReplicaSet if it is followed, and its Deployment.
func (w *watchSet) markReplicaSet(nc *namespaceCache, obj any) {
	rs, ok := obj.(*appsv1.ReplicaSet)
	if !ok {
		return
	}
	keys := []objectKey{{group: "apps", kind: "ReplicaSet", namespace: rs.Namespace, name: rs.Name}}
	if ref := metav1.GetControllerOf(rs); ref != nil {
		keys = append(keys, ownerKey(rs.Namespace, ref))
	}
	w.mark(keys...)
}

// markEvent marks what a Warning event is about and, for a pod or a
// ReplicaSet, the objects that control it.
func (w *watchSet) markEvent(nc *namespaceCache, obj any) {
	e, ok := obj.(*corev1.Event)
	if !ok {
		return
	}
	in := e.InvolvedObject
	ns := in.Namespace
	if ns == "" {
		ns = e.Namespace
	}
	gv, _ := schema.ParseGroupVersion(in.APIVersion)
	key := objectKey{group: gv.Group, kind: in.Kind, namespace: ns, name: in.Name}
	switch {
	case key.group == "" && key.kind == "Pod":
		if p, ok := getFrom[*corev1.Pod](nc.pods, ns, in.Name); ok {
			w.markPod(nc, p)
			return
		}
	case key.group == "apps" && key.kind == "ReplicaSet":
		if rs, ok := getFrom[*appsv1.ReplicaSet](nc.rss, ns, in.Name); ok {
			w.markReplicaSet(nc, rs)
			return
		}
	}
	w.mark(key)
}

// appendControllers appends the key of the controller ref names and, when
// that is a ReplicaSet in the cache, the key of its own controller.
func (nc *namespaceCache) appendControllers(keys []objectKey, ns string, ref *metav1.OwnerReference) []objectKey {
	if ref == nil {
		return keys
	}
	k := ownerKey(ns, ref)
	keys = append(keys, k)
	if k.group == "apps" && k.kind == "ReplicaSet" {
		if rs, ok := getFrom[*appsv1.ReplicaSet](nc.rss, ns, ref.Name); ok {
			if up := metav1.GetControllerOf(rs); up != nil {
				keys = append(keys, ownerKey(ns, up))
			}
		}
	}
	return keys
}

func ownerKey(ns string, ref *metav1.OwnerReference) objectKey {
	gv, _ := schema.ParseGroupVersion(ref.APIVersion)
	return objectKey{group: gv.Group, kind: ref.Kind, namespace: ns, name: ref.Name}
}

// getFrom reads ns/name from a store of T.
func getFrom[T any](s cache.Store, ns, name string) (T, bool) {
	var zero T
	item, ok, err := s.GetByKey(ns + "/" + name)
	if err != nil || !ok {
		return zero, false
	}
	out, ok := item.(T)
	return out, ok
}

// cacheReader serves the Finder from a watchSet's namespace caches: no API
// call and no scan of the namespace per evaluation, however often objects
// change.
type cacheReader struct {
	w *watchSet
}

func (r cacheReader) cache(ns string) (*namespaceCache, error) {
	nc, ok := r.w.namespaces[ns]
	if !ok {
		return nil, fmt.Errorf("namespace %q is not watched", ns)
	}
	return nc, nil
}

// controlled returns the items of idx whose controller has uid and whose
// labels match sel.
func controlled[T metav1.Object](idx cache.Indexer, uid types.UID, sel labels.Selector) ([]T, error) {
	items, err := idx.ByIndex(controllerIndex, string(uid))
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(items))
	for _, item := range items {
		if o, ok := item.(T); ok && sel.Matches(labels.Set(o.GetLabels())) {
			out = append(out, o)
		}
	}
	return out, nil
}

func (r cacheReader) ListPods(_ context.Context, ns string, sel labels.Selector, controller types.UID) ([]corev1.Pod, error) {
	nc, err := r.cache(ns)
	if err != nil {
		return nil, err
	}
	list, err := controlled[*corev1.Pod](nc.pods, controller, sel)
	if err != nil {
		return nil, err
	}
	out := make([]corev1.Pod, len(list))
	for i, p := range list {
		out[i] = *p
	}
	return out, nil
}

func (r cacheReader) ListReplicaSets(_ context.Context, ns string, sel labels.Selector, controller types.UID) ([]appsv1.ReplicaSet, error) {
	nc, err := r.cache(ns)
	if err != nil {
		return nil, err
	}
	list, err := controlled[*appsv1.ReplicaSet](nc.rss, controller, sel)
	if err != nil {
		return nil, err
	}
	out := make([]appsv1.ReplicaSet, len(list))
	for i, rs := range list {
		out[i] = *rs
	}
	return out, nil
}

func (r cacheReader) ListEvents(_ context.Context, ns, kind, name string) ([]corev1.Event, error) {
	nc, err := r.cache(ns)
	if err != nil {
		return nil, err
	}
	items, err := nc.events.ByIndex(involvedIndex, involvedKey(ns, kind, name))
	if err != nil {
		return nil, err
	}
	out := make([]corev1.Event, 0, len(items))
	for _, item := range items {
		if e, ok := item.(*corev1.Event); ok {
			out = append(out, *e)
		}
	}
	return out, nil
}
