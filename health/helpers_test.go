package health

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baton-gitops/baton/internal/testenv"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/client-go/util/retry"
)

// namespace makes a fresh namespace for the test and waits for its default
// ServiceAccount: until it exists the apiserver refuses pods, and a
// ReplicaSet would record that refusal as a FailedCreate event.
func namespace(t *testing.T, kube kubernetes.Interface) string {
	t.Helper()
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := waitDefaultServiceAccount(ctx, kube, ns); err != nil {
		t.Fatal(err)
	}
	return ns
}

// waitDefaultServiceAccount waits until the namespace's default
// ServiceAccount exists.
func waitDefaultServiceAccount(ctx context.Context, kube kubernetes.Interface, ns string) error {
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", "default").String()
			return kube.CoreV1().ServiceAccounts(ns).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", "default").String()
			return kube.CoreV1().ServiceAccounts(ns).Watch(ctx, o)
		},
	}
	_, err := watchtools.UntilWithSync(ctx, lw, &corev1.ServiceAccount{}, func(store cache.Store) (bool, error) {
		return len(store.List()) > 0, nil
	}, func(watch.Event) (bool, error) { return true, nil })
	if err != nil {
		return fmt.Errorf("namespace %s: default service account: %w", ns, err)
	}
	return nil
}

// deployment builds a Deployment whose pods carry the testenv failure
// label when failure is set.
func deployment(ns, name string, replicas int32, failure string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	podLabels := map[string]string{"app": name}
	if failure != "" {
		podLabels[testenv.FailureLabel] = failure
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
				Spec:       podSpec(name),
			},
		},
	}
}

// podSpec is one container named after the app, with modest requests.
func podSpec(name string) corev1.PodSpec {
	return corev1.PodSpec{
		Containers: []corev1.Container{{
			Name:  name,
			Image: "registry.example/" + name + ":1.0",
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{
					corev1.ResourceCPU:    resource.MustParse("100m"),
					corev1.ResourceMemory: resource.MustParse("64Mi"),
				},
				Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
			},
		}},
	}
}

func createDeployment(t *testing.T, kube kubernetes.Interface, d *appsv1.Deployment) *appsv1.Deployment {
	t.Helper()
	out, err := kube.AppsV1().Deployments(d.Namespace).Create(t.Context(), d, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create deployment %s/%s: %v", d.Namespace, d.Name, err)
	}
	return out
}

func ref(kind, ns, name string) ObjectRef {
	switch kind {
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet":
		return ObjectRef{Group: "apps", Version: "v1", Kind: kind, Namespace: ns, Name: name}
	case "Job", "CronJob":
		return ObjectRef{Group: "batch", Version: "v1", Kind: kind, Namespace: ns, Name: name}
	}
	return ObjectRef{Version: "v1", Kind: kind, Namespace: ns, Name: name}
}

func newChecker(t *testing.T) *Checker {
	t.Helper()
	c, err := NewChecker(env.Config(), CheckerOptions{Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("new checker: %v", err)
	}
	return c
}

// podWatch follows the pods of a namespace and records when each condition
// was first seen true on any pod: the moment "the pod status shows it", for
// the latency figures.
type podWatch struct {
	seen chan podSeen
}

type podSeen struct {
	name string
	at   time.Time
}

// watchPods starts recording, for each named predicate, the first time a
// pod in ns satisfies it. It stops at the end of the test.
func watchPods(t *testing.T, kube kubernetes.Interface, ns string, preds map[string]func(*corev1.Pod) bool) *podWatch {
	t.Helper()
	w, err := kube.CoreV1().Pods(ns).Watch(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("watch pods in %s: %v", ns, err)
	}
	pw := &podWatch{seen: make(chan podSeen, len(preds))}
	done := make(chan struct{})
	t.Cleanup(func() {
		w.Stop()
		<-done
	})
	go func() {
		defer close(done)
		fired := map[string]bool{}
		for ev := range w.ResultChan() {
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			for name, pred := range preds {
				if !fired[name] && pred(pod) {
					fired[name] = true
					pw.seen <- podSeen{name: name, at: time.Now()}
				}
			}
		}
	}()
	return pw
}

// first returns when the predicate was first satisfied, waiting up to the
// test's context.
func (pw *podWatch) first(t *testing.T, ctx context.Context, name string) time.Time {
	t.Helper()
	for {
		select {
		case s := <-pw.seen:
			if s.name == name {
				return s.at
			}
		case <-ctx.Done():
			t.Fatalf("pod condition %q never seen: %v", name, ctx.Err())
		}
	}
}

// waitingReason is a predicate: some container of the pod waits with reason.
func waitingReason(reason string) func(*corev1.Pod) bool {
	return func(p *corev1.Pod) bool {
		for _, cs := range p.Status.ContainerStatuses {
			if cs.State.Waiting != nil && cs.State.Waiting.Reason == reason {
				return true
			}
		}
		return false
	}
}

// lastTerminated is a predicate: some container last terminated with reason.
func lastTerminated(reason string) func(*corev1.Pod) bool {
	return func(p *corev1.Pod) bool {
		for _, cs := range p.Status.ContainerStatuses {
			if t := cs.LastTerminationState.Terminated; t != nil && t.Reason == reason {
				return true
			}
		}
		return false
	}
}

// runningNotReady is a predicate: the pod runs but is not Ready.
func runningNotReady(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodRunning && !podReady(p) && len(p.Status.ContainerStatuses) > 0
}

// unschedulable is a predicate: the scheduler gave up on the pod.
func unschedulable(p *corev1.Pod) bool {
	c, ok := podCondition(p, corev1.PodScheduled)
	return ok && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable
}

// progress records when a report first named each cause, from the
// OnProgress callback of a wait or the onChange callback of a monitor.
type progress struct {
	ch chan causeSeen
}

type causeSeen struct {
	cause Cause
	at    time.Time
}

func newProgress() *progress { return &progress{ch: make(chan causeSeen, 64)} }

func (p *progress) record(r Report) {
	for _, o := range r.Objects {
		if o.Cause != NoCause {
			select {
			case p.ch <- causeSeen{cause: o.Cause, at: time.Now()}:
			default:
			}
		}
	}
}

// latency logs and returns the seconds from the pod status showing a cause
// to a report naming it, the figure the issue asks for.
func latency(t *testing.T, cause Cause, shown, named time.Time) float64 {
	t.Helper()
	secs := named.Sub(shown).Seconds()
	t.Logf("latency %s: %.3f s from pod status to cause named", cause, secs)
	return secs
}

// firstNamed returns when cause was first named in recorded reports, or
// the final report's Finished time if it names cause and no progress
// report did.
func (p *progress) firstNamed(t *testing.T, cause Cause, final Report) time.Time {
	t.Helper()
	for {
		select {
		case s := <-p.ch:
			if s.cause == cause {
				return s.at
			}
		default:
			if final.Cause == cause {
				return final.Finished
			}
			t.Fatalf("cause %s never named; final report: %s", cause, final.Message)
			return time.Time{}
		}
	}
}

func describe(r Report) string {
	s := fmt.Sprintf("%s cause=%q: %s", r.Overall, r.Cause, r.Message)
	for _, o := range r.Objects {
		s += fmt.Sprintf("\n  %s %s %q %s", o.Ref, o.Status, o.Cause, o.Message)
	}
	return s
}

// testLogger logs to the test's output until the test ends; later lines
// (from informer goroutines winding down) are dropped, since logging after
// the end panics.
func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.done = true
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	t    *testing.T
	mu   sync.Mutex // guards done and serialises writes
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

// eventWatch records when a Warning event with a reason first appears in a
// namespace: for refused pods, the cluster shows the cause in an event.
type eventWatch struct {
	seen chan time.Time
}

func watchEvents(t *testing.T, kube kubernetes.Interface, ns, reason string) *eventWatch {
	t.Helper()
	w, err := kube.CoreV1().Events(ns).Watch(t.Context(), metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("reason", reason).String(),
	})
	if err != nil {
		t.Fatalf("watch events in %s: %v", ns, err)
	}
	ew := &eventWatch{seen: make(chan time.Time, 1)}
	done := make(chan struct{})
	t.Cleanup(func() {
		w.Stop()
		<-done
	})
	go func() {
		defer close(done)
		for range w.ResultChan() {
			select {
			case ew.seen <- time.Now():
			default:
			}
			return
		}
	}()
	return ew
}

func (ew *eventWatch) first(t *testing.T, ctx context.Context) time.Time {
	t.Helper()
	select {
	case at := <-ew.seen:
		return at
	case <-ctx.Done():
		t.Fatalf("event never seen: %v", ctx.Err())
		return time.Time{}
	}
}

// writePodStatus waits until the scheduler has bound the pod (binding
// writes the PodScheduled condition, which would race a status write),
// then writes its status with edit, as a kubelet would. The pod must carry
// testenv.ManualStatusLabel so that kwok leaves the status alone.
func writePodStatus(ctx context.Context, kube kubernetes.Interface, ns, name string, edit func(*corev1.Pod)) error {
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
			return kube.CoreV1().Pods(ns).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
			return kube.CoreV1().Pods(ns).Watch(ctx, o)
		},
	}
	bound := func(store cache.Store) (bool, error) {
		for _, item := range store.List() {
			if p, ok := item.(*corev1.Pod); ok && p.Spec.NodeName != "" {
				return true, nil
			}
		}
		return false, nil
	}
	_, err := watchtools.UntilWithSync(ctx, lw, &corev1.Pod{}, bound, func(ev watch.Event) (bool, error) {
		p, ok := ev.Object.(*corev1.Pod)
		return ok && p.Spec.NodeName != "", nil
	})
	if err != nil {
		return fmt.Errorf("pod %s/%s: wait for binding: %w", ns, name, err)
	}
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pod, err := kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		edit(pod)
		_, err = kube.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("write status of pod %s/%s: %w", ns, name, err)
		}
		return nil
	})
}
