package faults

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"

	"github.com/baton-gitops/baton/reconciler"
	"github.com/baton-gitops/baton/reconciler/inventory"
)

// event is one change the watcher saw.
type event struct {
	namespace, kind, name string
	deleted               bool
	obj                   *unstructured.Unstructured
	at                    time.Time
}

// deletion is an object of an environment that went away.
type deletion struct {
	env, object string
	at          time.Time
}

// watcher watches every ConfigMap and Deployment of the cluster for the
// whole run: it records every deletion in an environment's namespace (to
// prove no object in git was ever deleted), any object there that another
// environment claims or the bystander changing (no object of another
// environment touched), and hands events to fault triggers.
type watcher struct {
	w *world

	mu        sync.Mutex // guards the fields below
	deletions []deletion
	foreign   []string
	subs      []*subscription
	events    int
}

type subscription struct {
	match func(event) bool
	fired chan struct{}
}

func startWatcher(t *testing.T, w *world) *watcher {
	wt := &watcher{w: w}
	ctx, cancel := context.WithCancel(w.ctx)
	factory := dynamicinformer.NewDynamicSharedInformerFactory(env.Dynamic(t), 0)
	for _, gvr := range []schema.GroupVersionResource{
		{Version: "v1", Resource: "configmaps"},
		{Group: "apps", Version: "v1", Resource: "deployments"},
	} {
		inf := factory.ForResource(gvr).Informer()
		_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: func(obj any) { wt.observe(obj, false, false) },
			UpdateFunc: func(old, obj any) {
				// A relist (after an API server restart) repeats objects
				// unchanged: only a new version is a change.
				o, ok1 := old.(*unstructured.Unstructured)
				n, ok2 := obj.(*unstructured.Unstructured)
				wt.observe(obj, !ok1 || !ok2 || o.GetResourceVersion() != n.GetResourceVersion(), false)
			},
			DeleteFunc: func(obj any) { wt.observe(obj, false, true) },
		})
	}
	factory.Start(ctx.Done())
	t.Cleanup(func() { cancel(); factory.Shutdown() })
	for gvr, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			t.Fatalf("watch %s: no sync", gvr)
		}
	}
	return wt
}

func (wt *watcher) observe(obj any, updated, deleted bool) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj, deleted = tomb.Obj, true
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	ev := event{namespace: u.GetNamespace(), kind: u.GetKind(), name: u.GetName(), deleted: deleted, obj: u, at: time.Now()}
	envName := ""
	for e, ns := range wt.w.ns {
		if ns == ev.namespace {
			envName = e
		}
	}
	wt.mu.Lock()
	defer wt.mu.Unlock()
	wt.events++
	if envName != "" {
		object := ev.kind + "/" + ev.name
		claim := u.GetLabels()[reconciler.LabelEnvironment]
		switch {
		case ev.name == "bystander" && ev.kind == "ConfigMap" && (deleted || updated):
			wt.foreign = append(wt.foreign, fmt.Sprintf("the bystander in %s's namespace was changed or deleted", envName))
		case claim != "" && claim != envName:
			wt.foreign = append(wt.foreign, fmt.Sprintf("%s in %s's namespace is labelled for %s", object, envName, claim))
		case deleted && claim == envName:
			wt.deletions = append(wt.deletions, deletion{env: envName, object: object, at: ev.at})
		}
	}
	for _, s := range wt.subs {
		if s.match != nil && s.match(ev) {
			s.match = nil
			close(s.fired)
		}
	}
}

// on returns a channel closed at the first event match accepts.
func (wt *watcher) on(match func(event) bool) <-chan struct{} {
	s := &subscription{match: match, fired: make(chan struct{})}
	wt.mu.Lock()
	defer wt.mu.Unlock()
	wt.subs = append(wt.subs, s)
	return s.fired
}

// forget drops subscriptions that never fired.
func (wt *watcher) forget() {
	wt.mu.Lock()
	defer wt.mu.Unlock()
	wt.subs = nil
}

// since returns the deletions and foreign changes recorded from index i
// and j on, and the current counts.
func (wt *watcher) since(i, j int) ([]deletion, []string, int, int) {
	wt.mu.Lock()
	defer wt.mu.Unlock()
	return append([]deletion(nil), wt.deletions[i:]...), append([]string(nil), wt.foreign[j:]...), len(wt.deletions), len(wt.foreign)
}

// releaseEvent matches an object of env applied at release n.
func (w *world) releaseEvent(envName string, n int) func(event) bool {
	want := fmt.Sprint(n)
	return func(ev event) bool {
		if ev.namespace != w.ns[envName] || ev.deleted {
			return false
		}
		v, _, _ := unstructured.NestedString(ev.obj.Object, "data", "release")
		if v == "" {
			v, _, _ = unstructured.NestedString(ev.obj.Object, "spec", "template", "metadata", "annotations", "release")
		}
		return v == want
	}
}

// pruneEvent matches an object of env being deleted.
func (w *world) pruneEvent(envName string) func(event) bool {
	return func(ev event) bool { return ev.namespace == w.ns[envName] && ev.deleted && ev.name != "bystander" }
}

// inventoryWrite matches the nth write of env's inventory from now.
func (w *world) inventoryWrite(envName string, nth int) func(event) bool {
	seen := 0
	return func(ev event) bool {
		if ev.namespace != w.agentNS || ev.name != inventory.ConfigMapName(envName) || ev.deleted {
			return false
		}
		seen++
		return seen == nth
	}
}
