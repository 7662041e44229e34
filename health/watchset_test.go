package health

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/baton-gitops/baton/internal/testenv"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// evaluationCounter counts the evaluations of each object by name.
type evaluationCounter struct {
	mu     sync.Mutex // guards counts
	counts map[string]int
}

func countEvaluations(c *Checker) *evaluationCounter {
	ec := &evaluationCounter{counts: map[string]int{}}
	c.evaluated = func(r ObjectRef) {
		ec.mu.Lock()
		defer ec.mu.Unlock()
		ec.counts[r.Name]++
	}
	return ec
}

func (ec *evaluationCounter) get(name string) int {
	ec.mu.Lock()
	defer ec.mu.Unlock()
	return ec.counts[name]
}

// TestChangeEvaluatesOnlyItsObjects: while one Deployment rolls out (its
// pods, ReplicaSets and status changing many times), the monitor evaluates
// that Deployment again and again, and its neighbours not once.
func TestChangeEvaluatesOnlyItsObjects(t *testing.T) {
	kube := env.Clientset(t)
	ns := namespace(t, kube)
	createDeployment(t, kube, deployment(ns, "api", 2, ""))
	createDeployment(t, kube, deployment(ns, "web", 2, ""))
	if _, err := kube.CoreV1().ConfigMaps(ns).Create(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c := newChecker(t)
	counts := countEvaluations(c)

	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	refs := []ObjectRef{ref("Deployment", ns, "api"), ref("Deployment", ns, "web"), ref("ConfigMap", ns, "settings")}
	m := startMonitor(t, ctx, c, refs, MonitorOptions{})
	defer m.stop(cancel)
	next := func(what string, ok func(Report) bool) Report { return m.next(t, ctx, what, ok) }
	first := next("Healthy", func(r Report) bool { return r.Overall == Healthy })
	web, settings, api := counts.get("web"), counts.get("settings"), counts.get("api")

	// Pods that warm up for a few seconds: the rollout is seen in progress.
	patch := `{"spec":{"template":{"metadata":{"labels":{"` + testenv.FailureLabel + `":"` + testenv.FailSlowReady + `"}}}}}`
	if _, err := kube.AppsV1().Deployments(ns).Patch(ctx, "api", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	next("api in progress", func(r Report) bool { return r.Overall == Progressing && r.Objects[0].Status == InProgress })
	next("Healthy again", func(r Report) bool {
		return r.Overall == Healthy && r.Objects[0].ReadyAt.After(first.Objects[0].ReadyAt)
	})
	if got := counts.get("api"); got < api+2 {
		t.Errorf("api evaluated %d times during its rollout, want at least 2", got-api)
	}
	if counts.get("web") != web || counts.get("settings") != settings {
		t.Errorf("neighbours evaluated during api's rollout: web %d, settings %d times",
			counts.get("web")-web, counts.get("settings")-settings)
	}
}

// TestMarksCoalesce: an object marked many times before a round is
// evaluated once; a resync of a healthy set evaluates nothing.
func TestMarksCoalesce(t *testing.T) {
	kube := env.Clientset(t)
	ns := namespace(t, kube)
	if _, err := kube.CoreV1().ConfigMaps(ns).Create(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c := newChecker(t)
	counts := countEvaluations(c)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	w, err := c.watch(ctx, []ObjectRef{ref("ConfigMap", ns, "settings")}, EvalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	if !w.waitSynced(ctx) {
		t.Fatal("not synced")
	}
	w.evaluate(ctx)
	if s := summaryOf(w.health); s.overall != Healthy {
		t.Fatalf("summary %+v", s)
	}
	before := counts.get("settings")
	for range 100 {
		w.mark(objectKey{kind: "ConfigMap", namespace: ns, name: "settings"})
	}
	w.evaluate(ctx)
	if got := counts.get("settings") - before; got != 1 {
		t.Errorf("100 marks gave %d evaluations, want 1", got)
	}
	w.markTimeSensitive()
	w.evaluate(ctx)
	if got := counts.get("settings") - before; got != 1 {
		t.Errorf("a resync of a healthy object evaluated it (%d evaluations)", got-1)
	}
}
