package reconciler

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"
)

// memObjects is the number of managed objects the memory benchmark
// watches; each carries 2 KiB of data, a typical small ConfigMap.
const memObjects = 3000

// heapInUse returns the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// createLabelled creates n ConfigMaps labelled for env, as a pass would
// have applied them, with the desired-hash annotation.
func createLabelled(tb testing.TB, ns, environment string, n int) {
	tb.Helper()
	dyn := env.Dynamic(tb)
	payload := strings.Repeat("x", 2048)
	g := new(errgroup.Group)
	g.SetLimit(16)
	for i := range n {
		g.Go(func() error {
			cm := configMap(ns, fmt.Sprintf("cm-%05d", i), map[string]string{"value": payload})
			cm.SetLabels(map[string]string{LabelEnvironment: environment, LabelManagedBy: ManagedByValue})
			cm.SetAnnotations(map[string]string{AnnotationDesiredHash: "0123456789abcdef01234567"})
			_, err := dyn.Resource(gvrConfigMaps).Namespace(ns).Apply(context.Background(), cm.GetName(), cm,
				metav1.ApplyOptions{FieldManager: "baton", Force: true})
			return err
		})
	}
	require.NoError(tb, g.Wait())
}

// BenchmarkWatchCacheMemoryPerObject measures the heap the watch cache
// holds per managed object (3,000 ConfigMaps of 2 KiB), against the
// full-object watch the cache used to keep (a dynamic informer whose
// objects lose only their managedFields' field sets), in the same run:
// bytes/object and the ratio. Run with:
//
//	go test -run '^$' -bench WatchCacheMemory -benchtime 1x ./reconciler/
func BenchmarkWatchCacheMemoryPerObject(b *testing.B) {
	ns := env.Namespace(b)
	name := envName(b)
	createLabelled(b, ns, name, memObjects)
	selector := func(o *metav1.ListOptions) { o.LabelSelector = LabelEnvironment + "=" + name }

	var slimBytes, fullBytes float64
	for range b.N {
		// The watch cache as a pass uses it: one metadata-only watch.
		before := heapInUse()
		md, err := metadata.NewForConfig(env.Config())
		require.NoError(b, err)
		c := newWatchCache(md, slog.New(slog.DiscardHandler), time.Minute, retryPolicy{base: time.Minute, max: time.Minute, now: time.Now})
		got, ok := c.lookup(context.Background(), name, gvrConfigMaps, ns, "cm-00000")
		require.True(b, ok)
		require.NotNil(b, got.obj)
		slimBytes = float64(heapInUse()-before) / memObjects
		c.close()

		// The full-object watch, for comparison.
		before = heapInUse()
		ctx, cancel := context.WithCancel(context.Background())
		inf := dynamicinformer.NewFilteredDynamicInformer(env.Dynamic(b), gvrConfigMaps, ns, 0, cache.Indexers{}, selector).Informer()
		_ = inf.SetTransform(func(o any) (any, error) {
			if u, ok := o.(*unstructured.Unstructured); ok {
				mf := u.GetManagedFields()
				for i := range mf {
					mf[i].FieldsV1 = nil
				}
				u.SetManagedFields(mf)
			}
			return o, nil
		})
		go inf.RunWithContext(ctx)
		require.True(b, cache.WaitForCacheSync(ctx.Done(), inf.HasSynced))
		fullBytes = float64(heapInUse()-before) / memObjects
		require.Len(b, inf.GetStore().List(), memObjects)
		cancel()
	}
	b.ReportMetric(slimBytes, "bytes/object")
	b.ReportMetric(fullBytes, "full-object-bytes/object")
	b.ReportMetric(fullBytes/slimBytes, "x-smaller")
}

// What the cache keeps of an object does not grow with the object: a
// large spec, status, labels and annotations (kubectl's
// last-applied-configuration) leave only the fields a pass needs.
func TestSlimKeepsOnlyWhatAPassNeeds(t *testing.T) {
	big := strings.Repeat("x", 100_000)
	u := configMap("ns", "web", map[string]string{"value": big})
	u.SetLabels(map[string]string{LabelEnvironment: "dev", "team": "shop", "other": big})
	u.SetAnnotations(map[string]string{AnnotationDesiredHash: "h1", "kubectl.kubernetes.io/last-applied-configuration": big})
	u.SetResourceVersion("42")
	u.SetUID("uid-1")
	u.SetManagedFields([]metav1.ManagedFieldsEntry{
		{Manager: "baton", Operation: metav1.ManagedFieldsOperationApply, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:data":{}}`)}},
		{Manager: "kubectl-client-side-apply", Operation: metav1.ManagedFieldsOperationUpdate, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:data":{}}`)}},
	})
	s := slim(u)
	want := &slimObject{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", ResourceVersion: "42"}, env: "dev", hash: "h1", adopt: true}
	require.Equal(t, want, s)
	again, err := (&cacheEntry{}).transform(s)
	require.NoError(t, err)
	require.Same(t, s, again, "a slim object was transformed again into another")
}
