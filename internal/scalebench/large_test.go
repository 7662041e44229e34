package scalebench

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/baton-gitops/baton/internal/agent"
	"github.com/baton-gitops/baton/internal/testenv/gitserver"
	"github.com/baton-gitops/baton/reconciler"
)

// largeObjects is the size of the one large environment.
const largeObjects = 5000

// changedObjects is how many of them a later commit changes.
const changedObjects = 500

var gvrConfigMaps = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}

// counter counts the API requests of a client.
type counter struct{ n atomic.Int64 }

func (c *counter) wrap(cfg *rest.Config) *rest.Config {
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(r *http.Request) (*http.Response, error) {
			c.n.Add(1)
			return rt.RoundTrip(r)
		})
	}
	return cfg
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// largeSet is the environment's objects: ConfigMaps of about 600 bytes,
// the first changed ones carrying value.
func largeSet(namespace string, changed int, value string) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, largeObjects)
	for i := range out {
		v := "v1"
		if i < changed {
			v = value
		}
		out[i] = &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": fmt.Sprintf("cm-%05d", i), "namespace": namespace,
				"labels": map[string]any{"app.kubernetes.io/part-of": "large"}},
			"data": map[string]any{"value": v, "settings": strings.Repeat("k=v;", 128)}}}
	}
	return out
}

// rawApply server-side applies objs with the reconciler's concurrency and
// nothing else: no diff, no inventory, no cache. It is the floor a cold
// sync is compared with.
func rawApply(b *testing.B, cfg *rest.Config, objs []*unstructured.Unstructured) time.Duration {
	b.Helper()
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	g := new(errgroup.Group)
	g.SetLimit(reconciler.DefaultConcurrency)
	for _, o := range objs {
		g.Go(func() error {
			_, err := dyn.Resource(gvrConfigMaps).Namespace(o.GetNamespace()).Apply(context.Background(), o.GetName(), o,
				metav1.ApplyOptions{FieldManager: "raw", Force: true})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// BenchmarkLargeEnvironment: one environment of 5,000 objects through the
// reconciler in process, each pass's API requests counted: the cold sync
// against a raw parallel server-side-apply loop of the same objects, with
// the same concurrency and client rate limit, in the same run (goal ≤
// 1.3×); a no-op pass (goal ≤ 0.1 s and ≤ 2 requests); a pass with 500
// objects changed. Both at the reconciler's default client rate limit
// (QPS 100) and without one. Run with:
//
//	go test -run '^$' -bench LargeEnvironment -benchtime 1x -timeout 30m ./internal/scalebench/
func BenchmarkLargeEnvironment(b *testing.B) {
	for _, rl := range []struct {
		name string
		qps  float32
	}{{"qps=100", reconciler.DefaultQPS}, {"unlimited", -1}} {
		b.Run(rl.name, func(b *testing.B) {
			for range b.N {
				var rawTime time.Duration
				{
					cfg := env.Config()
					cfg.QPS, cfg.Burst = rl.qps, reconciler.DefaultBurst
					rawTime = rawApply(b, cfg, largeSet(env.Namespace(b), 0, ""))
				}
				var c counter
				agentNS, ns := env.Namespace(b), env.Namespace(b)
				r, err := reconciler.New(c.wrap(env.Config()), reconciler.Options{InventoryNamespace: agentNS, QPS: rl.qps})
				if err != nil {
					b.Fatal(err)
				}
				pass := func(objs []*unstructured.Unstructured, rev string) (time.Duration, int64, reconciler.Result) {
					b.Helper()
					c.n.Store(0)
					start := time.Now()
					res, err := r.Sync(context.Background(), reconciler.Request{Environment: "large", Revision: rev,
						DefaultNamespace: ns, Objects: objs, Prune: true})
					if err != nil {
						b.Fatal(err)
					}
					return time.Since(start), c.n.Load(), res
				}
				cold, coldReqs, res := pass(largeSet(ns, 0, ""), "r1")
				if res.Counts[reconciler.ActionCreated] != largeObjects {
					b.Fatalf("cold sync: %v", res.Counts)
				}
				noop, noopReqs, res := pass(largeSet(ns, 0, ""), "r1")
				if res.Counts[reconciler.ActionUnchanged] != largeObjects {
					b.Fatalf("no-op pass: %v", res.Counts)
				}
				changed, changedReqs, res := pass(largeSet(ns, changedObjects, "v2"), "r2")
				if res.Counts[reconciler.ActionConfigured] != changedObjects {
					b.Fatalf("changed pass: %v", res.Counts)
				}
				r.Close()
				b.Logf("%s: raw SSA %.2fs; cold sync %.2fs (%.2f× raw, %d requests); no-op pass %.3fs (%d requests); %d changed %.2fs (%d requests); load average %s",
					rl.name, rawTime.Seconds(), cold.Seconds(), cold.Seconds()/rawTime.Seconds(), coldReqs,
					noop.Seconds(), noopReqs, changedObjects, changed.Seconds(), changedReqs, loadAverage())
				b.ReportMetric(cold.Seconds()/rawTime.Seconds(), "cold/raw")
				b.ReportMetric(cold.Seconds(), "cold-s")
				b.ReportMetric(noop.Seconds(), "noop-s")
				b.ReportMetric(float64(noopReqs), "noop-requests")
				b.ReportMetric(changed.Seconds(), "changed500-s")
				b.ReportMetric(float64(changedReqs), "changed500-requests")
			}
		})
	}
}

// largeFiles is the repository of the large environment: 50 files of 100
// ConfigMaps each, listed by one kustomization.
func largeFiles(changed int, value string) map[string]string {
	files := map[string]string{}
	var res []string
	for f := range largeObjects / 100 {
		var docs []string
		for i := f * 100; i < (f+1)*100; i++ {
			v := "v1"
			if i < changed {
				v = value
			}
			docs = append(docs, fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%05d\ndata:\n  value: %q\n  settings: %q\n",
				i, v, strings.Repeat("k=v;", 128)))
		}
		name := fmt.Sprintf("objects-%02d.yaml", f)
		files["large/"+name] = strings.Join(docs, "---\n")
		res = append(res, name)
	}
	files["large/kustomization.yaml"] = "resources:\n  - " + strings.Join(res, "\n  - ") + "\n"
	return files
}

// BenchmarkLargeEnvironmentAgent: the same environment synced by the
// agent, a child process, from git: the cold sync (render and apply), a
// no-op pass (the next resync) and a commit changing 500 objects, each as
// the agent reports it, and the agent's peak resident memory (goal ≤ 300
// MiB) and CPU seconds. Run with:
//
//	go test -run '^$' -bench LargeEnvironmentAgent -benchtime 1x -timeout 30m ./internal/scalebench/
func BenchmarkLargeEnvironmentAgent(b *testing.B) {
	srv := gitserver.Start(b, gitserver.Options{})
	repo := srv.CreateRepo(b, "large", largeFiles(0, ""))
	token := writeFile(b, "token", srv.Token)
	for range b.N {
		appNS, agentNS := env.Namespace(b), env.Namespace(b)
		p := startAgent(b, fmt.Sprintf(`repositories:
  - name: large
    url: %s
    auth: {username: %s, tokenFile: %s}
    interval: 20s
environments:
  - {name: large, branch: env/dev, path: large, namespace: %s, timeout: 15m, health: {timeout: 10m}}
sync: [large]
agent:
  namespace: %s
  leaderElection: {enabled: false}
`, srv.HTTPURL("large"), srv.User, token, appNS, agentNS))
		v1 := repo.Head(b, "env/dev")
		first := p.waitFor(20*time.Minute, time.Second, "the cold sync", syncedAt(v1, time.Time{}))
		cold := first.Environments[0].LastSync
		coldWall := time.Since(p.started)
		// The next resync (the interval is 20s) is a no-op pass.
		next := p.waitFor(2*time.Minute, time.Second, "a no-op pass", syncedAt(v1, cold.Time))
		noop := next.Environments[0].LastSync
		if noop.Counts["unchanged"] != largeObjects {
			b.Fatalf("no-op pass: %v", noop.Counts)
		}
		v2 := repo.Commit(b, "env/dev", gitserver.Change{Write: largeFiles(changedObjects, "v2")})
		after := p.waitFor(10*time.Minute, time.Second, "the pass of 500 changed objects", syncedAt(v2, noop.Time))
		changed := after.Environments[0].LastSync
		p.waitFor(10*time.Minute, time.Second, "healthy", func(st agent.Status) (bool, string) {
			h := st.Environments[0].Health
			return h.Status == "Healthy" && h.Revision == v2, h.Status + " " + h.Message
		})
		u := p.usage()
		b.Logf("agent: cold sync %s (%.1fs from start), no-op pass %s, %d changed %s",
			cold.Duration, coldWall.Seconds(), noop.Duration, changedObjects, changed.Duration)
		report(b, fmt.Sprintf("one environment of %d objects", largeObjects), time.Since(p.started), u)
		b.ReportMetric(cold.Duration.Seconds(), "cold-sync-s")
		b.ReportMetric(noop.Duration.Seconds(), "noop-s")
		b.ReportMetric(changed.Duration.Seconds(), "changed500-s")
		b.ReportMetric(u.peakRSS, "MiB-peak-RSS")
		b.ReportMetric(u.cpu.Seconds(), "CPU-s")
		b.ReportMetric(u.peakRSSAll, "MiB-peak-RSS-with-workers")
		b.ReportMetric(u.cpuAll.Seconds(), "CPU-s-with-workers")
		p.stop()
	}
}

// syncedAt is a waitFor condition: the environment's last pass synced
// revision successfully, and started after since.
func syncedAt(revision string, since time.Time) func(agent.Status) (bool, string) {
	return func(st agent.Status) (bool, string) {
		if len(st.Environments) == 0 || st.Environments[0].LastSync == nil {
			return false, "no pass yet"
		}
		l := st.Environments[0].LastSync
		return l.Result == agent.SyncSucceeded && l.Revision == revision && l.Time.After(since),
			fmt.Sprintf("last pass %s of %s at %s: %s", l.Result, l.Revision, l.Time.Format(time.TimeOnly), l.Error)
	}
}
