package health

import (
	"context"
	"errors"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// watchedCache is one watch and the cache it keeps, run by a plain
// controller that calls its handler on the controller's own goroutine.
// A shared informer would add, per watch, a handler buffer of 1,024 slots
// (16 KiB) and three goroutines to hand events to its one handler: with a
// monitor per environment, seven watches each, that was most of the memory
// of an agent with a thousand environments.
type watchedCache struct {
	store  cache.Indexer
	synced cache.DoneChecker
	ctrl   cache.Controller
}

// lister is how a watch lists and watches its objects.
type lister struct {
	list  func(context.Context, metav1.ListOptions) (runtime.Object, error)
	watch func(context.Context, metav1.ListOptions) (watch.Interface, error)
	// tweak narrows the options (a field selector); nil for none.
	tweak func(*metav1.ListOptions)
	// client is the clientset or dynamic client, asked whether it lists by
	// watch (the API server's streaming list).
	client any
	// failed is told every error of a list or a watch request.
	failed func(error)
}

// newWatch builds a watch; start runs it.
func newWatch(l lister, objType runtime.Object, indexers cache.Indexers, transform cache.TransformFunc,
	handler cache.ResourceEventHandler) *watchedCache {
	report := func(err error) {
		if err != nil && l.failed != nil && !errors.Is(err, context.Canceled) {
			l.failed(err)
		}
	}
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			if l.tweak != nil {
				l.tweak(&o)
			}
			obj, err := l.list(ctx, o)
			report(err)
			return obj, err
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			if l.tweak != nil {
				l.tweak(&o)
			}
			wi, err := l.watch(ctx, o)
			report(err)
			return wi, err
		},
	}
	if indexers == nil {
		indexers = cache.Indexers{}
	}
	store, ctrl := cache.NewInformerWithOptions(cache.InformerOptions{
		ListerWatcher: cache.ToListWatcherWithWatchListSemantics(lw, l.client),
		ObjectType:    objType,
		Handler:       handler,
		Indexers:      indexers,
		Transform:     transform,
	})
	return &watchedCache{store: store.(cache.Indexer), synced: ctrl.HasSyncedChecker(), ctrl: ctrl}
}

// start runs the watches under w's context, their goroutines in w.wg.
func (w *watchSet) start(wcs ...*watchedCache) {
	for _, wc := range wcs {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			wc.ctrl.RunWithContext(w.ctx)
		}()
	}
}
