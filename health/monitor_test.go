package health

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/baton-gitops/baton/internal/testenv"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestMonitorDegradesOnLaterOOMKill: a healthy environment whose pods are
// later OOM-killed turns Degraded with the cause named, and the monitor
// stops when its context ends.
func TestMonitorDegradesOnLaterOOMKill(t *testing.T) {
	kube := env.Clientset(t)
	ns := namespace(t, kube)
	createDeployment(t, kube, deployment(ns, "api", 3, ""))
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "api"}}
	if _, err := kube.CoreV1().ConfigMaps(ns).Create(t.Context(), cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pw := watchPods(t, kube, ns, map[string]func(*corev1.Pod) bool{"oom": lastTerminated("OOMKilled")})

	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	reports := make(chan Report, 100)
	returned := make(chan error, 1)
	refs := []ObjectRef{ref("Deployment", ns, "api"), ref("ConfigMap", ns, "api")}
	go func() {
		returned <- newChecker(t).Monitor(ctx, refs, MonitorOptions{}, func(r Report) { reports <- r })
	}()
	next := func(what string, ok func(Report) bool) Report {
		t.Helper()
		for {
			select {
			case r := <-reports:
				if ok(r) {
					return r
				}
			case <-ctx.Done():
				t.Fatalf("no report %s: %v", what, ctx.Err())
			}
		}
	}

	healthy := next("Healthy", func(r Report) bool { return r.Overall == Healthy })
	if healthy.Since.IsZero() || healthy.Objects[0].ReadyAt.IsZero() {
		t.Errorf("healthy report without since/ready times: %+v", healthy)
	}

	// The next revision's pods get OOM-killed (kwok's failure stage).
	patch := `{"spec":{"template":{"metadata":{"labels":{"` + testenv.FailureLabel + `":"` + testenv.FailOOMKilled + `"}}}}}`
	if _, err := kube.AppsV1().Deployments(ns).Patch(ctx, "api", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	degraded := next("Degraded", func(r Report) bool { return r.Overall == Degraded })
	named := time.Now()
	if degraded.Cause != OOMKilled {
		t.Fatalf("degraded report: %s", describe(degraded))
	}
	want := `^Deployment ` + nsRE + `/api: 0/3 updated pods ready; pod api-` + hashRE + `-` + hashRE + `: container api OOMKilled \(exit 137, 3 restarts\)( \(and [12] more pods?\))?$`
	if !regexp.MustCompile(want).MatchString(degraded.Message) {
		t.Errorf("message = %q\nwant match for %s", degraded.Message, want)
	}
	if !degraded.Since.After(healthy.Since) || !degraded.Objects[0].ReadyAt.IsZero() || degraded.Objects[1].ReadyAt.IsZero() {
		t.Errorf("since %s (healthy since %s), ready at %s / %s: want a later since, the deployment no longer ready, the configmap still",
			degraded.Since, healthy.Since, degraded.Objects[0].ReadyAt, degraded.Objects[1].ReadyAt)
	}
	latency(t, OOMKilled, pw.first(t, ctx, "oom"), named)

	cancel()
	select {
	case err := <-returned:
		if err != nil {
			t.Errorf("Monitor returned %v, want nil at cancellation", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Monitor did not return within 10 s of its cancellation")
	}
}

// TestMonitorReportsOnlyChanges: updates that change nothing the report
// says, and frequent resyncs, send no report; a real change does.
func TestMonitorReportsOnlyChanges(t *testing.T) {
	kube := env.Clientset(t)
	ns := namespace(t, kube)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"}}
	cm, err := kube.CoreV1().ConfigMaps(ns).Create(t.Context(), cm, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	reports := make(chan Report, 100)
	returned := make(chan error, 1)
	go func() {
		returned <- newChecker(t).Monitor(ctx, []ObjectRef{ref("ConfigMap", ns, "settings")},
			MonitorOptions{Resync: 20 * time.Millisecond}, func(r Report) { reports <- r })
	}()
	defer func() {
		cancel()
		<-returned
	}()
	recv := func() Report {
		t.Helper()
		select {
		case r := <-reports:
			return r
		case <-ctx.Done():
			t.Fatal("no report")
			return Report{}
		}
	}
	if r := recv(); r.Overall != Healthy {
		t.Fatalf("first report: %s", describe(r))
	}
	// Several updates, each a watch event and an evaluation, with resyncs
	// in between; none changes the verdict or a message.
	for i := range 5 {
		cm.Labels = map[string]string{"touched": string(rune('a' + i))}
		if cm, err = kube.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := kube.CoreV1().ConfigMaps(ns).Delete(ctx, "settings", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	r := recv()
	if r.Overall != Progressing || r.Objects[0].Status != Unknown || r.Objects[0].Message != "ConfigMap/"+ns+"/settings: not found" {
		t.Errorf("second report, want the deletion: %s", describe(r))
	}
}
