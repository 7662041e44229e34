package reconciler

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
)

// Benchmarks run on the package's local control plane. Each reports
// requests/op, counted by a RoundTripper on the client (a watch counts once,
// when it starts). Run with:
//
//	go test -run '^$' -bench . -benchtime 3x ./reconciler/
const benchObjects = 1000

// rateLimits are the client-side limits measured: the default, and none at
// all, which shows what the API server itself allows.
var rateLimits = []struct {
	name  string
	qps   float32
	burst int
}{
	{"qps=100", DefaultQPS, DefaultBurst},
	{"unlimited", -1, 0},
}

func reportRequests(b *testing.B, c *requestCounter) {
	b.ReportMetric(float64(c.n.Load())/float64(b.N), "requests/op")
}

// BenchmarkColdApply1000 applies 1,000 new ConfigMaps in a fresh namespace:
// one server-side apply each, plus the inventory.
func BenchmarkColdApply1000(b *testing.B) {
	for _, rl := range rateLimits {
		b.Run(rl.name, func(b *testing.B) {
			var counter requestCounter
			agentNS := env.Namespace(b)
			r := newReconciler(b, counter.wrap(env.Config()), agentNS, Options{QPS: rl.qps, Burst: rl.burst})
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				ns := env.Namespace(b)
				req := Request{Environment: envName(b), DefaultNamespace: ns, Prune: true, Objects: configMaps("", benchObjects, "x")}
				b.StartTimer()
				res, err := r.Sync(context.Background(), req)
				if err != nil || res.Counts[ActionCreated] != benchObjects {
					b.Fatalf("cold apply: %v %v", err, res.Counts)
				}
			}
			reportRequests(b, &counter)
		})
	}
}

// BenchmarkNoopReconcile1000 runs a pass over 1,000 objects of which none
// changed: with the watch cache the objects need no round trip; without it
// each is read with a GET.
func BenchmarkNoopReconcile1000(b *testing.B) {
	for _, mode := range []struct {
		name    string
		disable bool
		qps     float32
	}{{"watch-cache", false, 0}, {"no-cache/qps=100", true, 0}, {"no-cache/unlimited", true, -1}} {
		b.Run(mode.name, func(b *testing.B) {
			ns := env.Namespace(b)
			var counter requestCounter
			r := newReconciler(b, counter.wrap(env.Config()), ns, Options{DisableCache: mode.disable, QPS: mode.qps})
			req := Request{Environment: envName(b), DefaultNamespace: ns, Prune: true, Objects: configMaps("", benchObjects, "x")}
			_, err := r.Sync(context.Background(), req)
			require.NoError(b, err)
			// One more pass so that the cache holds every answer.
			_, err = r.Sync(context.Background(), req)
			require.NoError(b, err)
			counter.n.Store(0)
			b.ResetTimer()
			for range b.N {
				res, err := r.Sync(context.Background(), req)
				if err != nil || res.Counts[ActionUnchanged] != benchObjects {
					b.Fatalf("no-op pass: %v %v", err, res.Counts)
				}
			}
			b.StopTimer()
			reportRequests(b, &counter)
		})
	}
}

// BenchmarkDriftCheck1000 runs a detect-only pass over 1,000 objects of
// which 10 were edited by hand: the 10 are dry-run to show their diff, the
// rest answered by the cache.
func BenchmarkDriftCheck1000(b *testing.B) {
	const drifted = 10
	ns := env.Namespace(b)
	var counter requestCounter
	r := newReconciler(b, counter.wrap(env.Config()), ns, Options{})
	name := envName(b)
	req := Request{Environment: name, DefaultNamespace: ns, Prune: true, Drift: DriftDetectOnly, Objects: configMaps("", benchObjects, "x")}
	_, err := r.Sync(context.Background(), req)
	require.NoError(b, err)
	cms := env.Clientset(b).CoreV1().ConfigMaps(ns)
	for i := range drifted {
		cm, err := cms.Get(context.Background(), fmt.Sprintf("cm-%04d", i), metav1.GetOptions{})
		require.NoError(b, err)
		cm.Data["value"] = "hand"
		edited, err := cms.Update(context.Background(), cm, metav1.UpdateOptions{FieldManager: "kubectl-edit"})
		require.NoError(b, err)
		waitCached(b, r, name, gvrConfigMaps, ns, cm.Name, func(o *unstructured.Unstructured) bool {
			return o != nil && o.GetResourceVersion() == edited.ResourceVersion
		})
	}
	counter.n.Store(0)
	b.ResetTimer()
	for range b.N {
		res, err := r.Sync(context.Background(), req)
		if err != nil || len(res.Drifted) != drifted {
			b.Fatalf("drift check: %v, %d drifted", err, len(res.Drifted))
		}
	}
	b.StopTimer()
	reportRequests(b, &counter)
}

// BenchmarkRawParallelSSA1000 is the floor for the cold apply: the same
// 1,000 ConfigMaps server-side applied by the same number of workers with
// nothing else — no diff, no inventory, no cache.
func BenchmarkRawParallelSSA1000(b *testing.B) {
	for _, rl := range rateLimits {
		b.Run(rl.name, func(b *testing.B) {
			var counter requestCounter
			cfg := counter.wrap(env.Config())
			cfg.QPS, cfg.Burst = rl.qps, rl.burst
			dyn, err := dynamic.NewForConfig(cfg)
			require.NoError(b, err)
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				ns := env.Namespace(b)
				objs := configMaps(ns, benchObjects, "x")
				b.StartTimer()
				g := new(errgroup.Group)
				g.SetLimit(DefaultConcurrency)
				for _, o := range objs {
					g.Go(func() error {
						_, err := dyn.Resource(gvrConfigMaps).Namespace(ns).Apply(context.Background(), o.GetName(), o,
							metav1.ApplyOptions{FieldManager: "bench", Force: true})
						return err
					})
				}
				if err := g.Wait(); err != nil {
					b.Fatal(err)
				}
			}
			reportRequests(b, &counter)
		})
	}
}
