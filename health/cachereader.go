package health

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// namespaceCache holds what the Finder reads in one namespace: pods,
// ReplicaSets and Warning events, each kept current by a watch.
type namespaceCache struct {
	pods      corelisters.PodLister
	rss       appslisters.ReplicaSetLister
	events    cache.Indexer
	synced    []cache.InformerSynced
	factories []informers.SharedInformerFactory
}

// involvedIndex indexes events by "Kind/name" of the object they are about.
const involvedIndex = "involved"

func involvedKey(kind, name string) string { return kind + "/" + name }

// namespaceCache returns the caches of ns, starting them on first use.
func (w *watchSet) namespaceCache(ns string) *namespaceCache {
	if nc, ok := w.namespaces[ns]; ok {
		return nc
	}
	f := informers.NewSharedInformerFactoryWithOptions(w.c.kube, 0, informers.WithNamespace(ns))
	// Only Warning events are read; Normal ones (Scheduled, Pulled,
	// Started, ScalingReplicaSet...) are most of the volume.
	ef := informers.NewSharedInformerFactoryWithOptions(w.c.kube, 0, informers.WithNamespace(ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("type", corev1.EventTypeWarning).String()
		}))
	pods := f.Core().V1().Pods()
	rss := f.Apps().V1().ReplicaSets()
	events := ef.Core().V1().Events()
	nc := &namespaceCache{
		pods:      pods.Lister(),
		rss:       rss.Lister(),
		events:    events.Informer().GetIndexer(),
		factories: []informers.SharedInformerFactory{f, ef},
	}
	_ = events.Informer().AddIndexers(cache.Indexers{involvedIndex: func(obj any) ([]string, error) {
		e, ok := obj.(*corev1.Event)
		if !ok {
			return nil, nil
		}
		return []string{involvedKey(e.InvolvedObject.Kind, e.InvolvedObject.Name)}, nil
	}})
	for _, inf := range []cache.SharedIndexInformer{pods.Informer(), rss.Informer(), events.Informer()} {
		_ = inf.SetTransform(stripManagedFields)
		reg, _ := inf.AddEventHandler(w.handler())
		nc.synced = append(nc.synced, reg.HasSynced)
	}
	f.Start(w.ctx.Done())
	ef.Start(w.ctx.Done())
	w.namespaces[ns] = nc
	return nc
}

// shutdown waits for the informer goroutines; the watchSet's context must
// be cancelled first.
func (nc *namespaceCache) shutdown() {
	for _, f := range nc.factories {
		f.Shutdown()
	}
}

// cacheReader serves the Finder from a watchSet's namespace caches: no API
// call per evaluation, however often objects change.
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

func (r cacheReader) ListPods(_ context.Context, ns string, sel labels.Selector) ([]corev1.Pod, error) {
	nc, err := r.cache(ns)
	if err != nil {
		return nil, err
	}
	list, err := nc.pods.Pods(ns).List(sel)
	if err != nil {
		return nil, err
	}
	out := make([]corev1.Pod, len(list))
	for i, p := range list {
		out[i] = *p
	}
	return out, nil
}

func (r cacheReader) ListReplicaSets(_ context.Context, ns string, sel labels.Selector) ([]appsv1.ReplicaSet, error) {
	nc, err := r.cache(ns)
	if err != nil {
		return nil, err
	}
	list, err := nc.rss.ReplicaSets(ns).List(sel)
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
	items, err := nc.events.ByIndex(involvedIndex, involvedKey(kind, name))
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
