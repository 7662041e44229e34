package health

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baton-gitops/baton/internal/testenv"
)

// Two namespaces followed through shared watches: one watch per kind for
// both monitors, each monitor told only of its own namespace (the same
// Deployment name in both, one healthy and one crash-looping, and the
// crash-loop's Warning events in the shared event cache), and the watches
// stop with the last monitor.
func TestSharedWatchesServeEveryNamespace(t *testing.T) {
	kube := env.Clientset(t)
	label := "baton-test-shared/" + strings.ToLower(strings.ReplaceAll(t.Name(), "_", "-"))
	label = label[:min(len(label), 63)]
	healthy, failing := namespace(t, kube), namespace(t, kube)
	for _, tc := range []struct{ ns, failure string }{{healthy, ""}, {failing, testenv.FailCrashLoop}} {
		d := deployment(tc.ns, "api", 2, tc.failure)
		// Its own map: the selector shares the one deployment made.
		d.Labels = map[string]string{"app": "api", label: "x"}
		createDeployment(t, kube, d)
		if _, err := kube.CoreV1().ConfigMaps(tc.ns).Create(t.Context(), &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "settings", Labels: map[string]string{label: "x"}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := NewChecker(env.Config(), CheckerOptions{Logger: testLogger(t), SharedLabel: label})
	if err != nil {
		t.Fatal(err)
	}
	refs := func(ns string) []ObjectRef {
		return []ObjectRef{ref("Deployment", ns, "api"), ref("ConfigMap", ns, "settings")}
	}

	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	var mu sync.Mutex
	last := map[string]Report{}
	var wg sync.WaitGroup
	for _, ns := range []string{healthy, failing} {
		wg.Go(func() {
			if err := c.Monitor(ctx, refs(ns), MonitorOptions{}, func(r Report) {
				mu.Lock()
				last[ns] = r
				mu.Unlock()
			}); err != nil {
				t.Error(err)
			}
		})
	}
	settled := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return last[healthy].Overall == Healthy && last[failing].Overall == Degraded
	}
	for !settled() {
		select {
		case <-ctx.Done():
			mu.Lock()
			t.Fatalf("not settled: healthy namespace: %s; failing namespace: %s", describe(last[healthy]), describe(last[failing]))
		case <-time.After(50 * time.Millisecond): // polling the reports with the context's deadline
		}
	}
	mu.Lock()
	bad := last[failing]
	mu.Unlock()
	if bad.Cause != CrashLoop || !strings.Contains(bad.Message, failing+"/api") || strings.Contains(bad.Message, healthy) {
		t.Errorf("failing namespace: %s", describe(bad))
	}

	c.shared.mu.Lock()
	kinds := len(c.shared.watches)
	for key, sw := range c.shared.watches {
		sw.mu.RLock()
		if len(sw.subs) != 2 {
			t.Errorf("shared watch %s %s routes to %d namespaces, want 2", key.role, key.gvr, len(sw.subs))
		}
		sw.mu.RUnlock()
	}
	c.shared.mu.Unlock()
	// Deployments, ConfigMaps, pods, ReplicaSets and Warning events.
	if kinds != 5 {
		t.Errorf("%d shared watches, want 5", kinds)
	}

	cancel()
	wg.Wait()
	c.shared.mu.Lock()
	defer c.shared.mu.Unlock()
	if n := len(c.shared.watches); n != 0 {
		t.Errorf("%d shared watches left after the last monitor stopped", n)
	}
}
