package health

import (
	"context"
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/baton-gitops/baton/internal/testenv"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
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
	refs := []ObjectRef{ref("Deployment", ns, "api"), ref("ConfigMap", ns, "api")}
	m := startMonitor(t, ctx, newChecker(t), refs, MonitorOptions{})
	next := func(what string, ok func(Report) bool) Report { return m.next(t, ctx, what, ok) }

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
	case err := <-m.returned:
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

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex // guards now
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestMonitorRecentOOMKillAgesOut: a container OOM-killed and restarted
// leaves its pod Ready and the Deployment Current, yet the environment is
// Degraded while the kill is recent, and Healthy again once the injected
// clock has moved past the window. kwok leaves these pods alone
// (ManualStatusLabel); their statuses are written as a kubelet would.
func TestMonitorRecentOOMKillAgesOut(t *testing.T) {
	kube := env.Clientset(t)
	ns := namespace(t, kube)
	d := deployment(ns, "cart", 2, "")
	d.Spec.Template.Labels[testenv.ManualStatusLabel] = "true"
	createDeployment(t, kube, d)

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var pods *corev1.PodList
	if err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		var err error
		pods, err = kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=cart"})
		return err == nil && len(pods.Items) == 2, nil
	}); err != nil {
		t.Fatalf("pods of cart: %v", err)
	}
	clock := &fakeClock{now: time.Now()}
	running := func(oomAt *metav1.Time) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			now := metav1.NewTime(clock.Now())
			p.Status.Phase = corev1.PodRunning
			p.Status.Conditions = []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
				{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
			}
			cs := corev1.ContainerStatus{Name: "cart", Image: "registry.example/cart:1.0", Ready: true,
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}}
			if oomAt != nil {
				cs.RestartCount = 1
				cs.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled", FinishedAt: *oomAt}
			}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{cs}
		}
	}
	for _, p := range pods.Items {
		if err := writePodStatus(ctx, kube, ns, p.Name, running(nil)); err != nil {
			t.Fatal(err)
		}
	}

	c, err := NewChecker(env.Config(), CheckerOptions{Logger: testLogger(t), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	m := startMonitor(t, ctx, c, []ObjectRef{ref("Deployment", ns, "cart")}, MonitorOptions{Resync: 50 * time.Millisecond})
	defer m.stop(cancel)
	next := func(what string, ok func(Report) bool) Report { return m.next(t, ctx, what, ok) }
	healthy := next("Healthy", func(r Report) bool { return r.Overall == Healthy })
	if !healthy.Since.Equal(clock.Now()) || !healthy.Objects[0].ReadyAt.Equal(clock.Now()) {
		t.Errorf("since %s, ready at %s: want the injected clock's %s", healthy.Since, healthy.Objects[0].ReadyAt, clock.Now())
	}

	clock.Add(time.Minute)
	oomAt := metav1.NewTime(clock.Now().Add(-30 * time.Second).Truncate(time.Second))
	if err := writePodStatus(ctx, kube, ns, pods.Items[0].Name, running(&oomAt)); err != nil {
		t.Fatal(err)
	}
	degraded := next("Degraded", func(r Report) bool { return r.Overall == Degraded })
	want := fmt.Sprintf("Deployment %s/cart: 2/2 pods available; pod %s: container cart OOMKilled at %s (exit 137, 1 restart)",
		ns, pods.Items[0].Name, oomAt.UTC().Format(time.RFC3339))
	if degraded.Cause != OOMKilled || degraded.Message != want || degraded.Objects[0].Status != Current {
		t.Errorf("report: %s\nwant message %q", describe(degraded), want)
	}
	if !degraded.Since.Equal(clock.Now()) {
		t.Errorf("degraded since %s, want %s", degraded.Since, clock.Now())
	}

	clock.Add(DefaultRecentWindow)
	again := next("Healthy again", func(r Report) bool { return true })
	if again.Overall != Healthy || again.Cause != NoCause {
		t.Errorf("after the window: %s", describe(again))
	}
}

// monitored is a Monitor running for a test, its reports in a channel.
type monitored struct {
	reports  chan Report
	returned chan error // Monitor's return value
}

func startMonitor(t *testing.T, ctx context.Context, c *Checker, refs []ObjectRef, opts MonitorOptions) *monitored {
	t.Helper()
	m := &monitored{reports: make(chan Report, 100), returned: make(chan error, 1)}
	go func() {
		m.returned <- c.Monitor(ctx, refs, opts, func(r Report) { m.reports <- r })
	}()
	return m
}

// next returns the next report for which ok is true, failing the test if
// none comes before ctx ends.
func (m *monitored) next(t *testing.T, ctx context.Context, what string, ok func(Report) bool) Report {
	t.Helper()
	for {
		select {
		case r := <-m.reports:
			if ok(r) {
				return r
			}
		case <-ctx.Done():
			t.Fatalf("no report %s: %v", what, ctx.Err())
		}
	}
}

// stop cancels the monitor's context and waits for it to return.
func (m *monitored) stop(cancel context.CancelFunc) {
	cancel()
	<-m.returned
}
