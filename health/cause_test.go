package health

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/baton-gitops/baton/internal/testenv"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// causeCase reproduces one cause in a fresh namespace.
type causeCase struct {
	name  string
	cause Cause
	// setup creates the failing objects and returns the reference to wait
	// for.
	setup func(t *testing.T, kube kubernetes.Interface, ns string) ObjectRef
	// shown says when the cluster shows the cause (on a pod, or an event
	// for refused pods), for the latency figure.
	shown func(*corev1.Pod) bool
	// failFast: Wait must return Degraded on its own, long before the
	// timeout; otherwise the test cancels the wait once the cause is named.
	failFast bool
	// message is the pattern of the object's message.
	message string
}

func deploymentCase(name, failure string, replicas int32) func(*testing.T, kubernetes.Interface, string) ObjectRef {
	return func(t *testing.T, kube kubernetes.Interface, ns string) ObjectRef {
		createDeployment(t, kube, deployment(ns, name, replicas, failure))
		return ref("Deployment", ns, name)
	}
}

var causeCases = []causeCase{
	{
		name: "crashloop", cause: CrashLoop, failFast: true,
		setup: deploymentCase("api", testenv.FailCrashLoop, 3),
		shown: waitingReason("CrashLoopBackOff"),
		message: `^Deployment ` + nsRE + `/api: 0/3 updated pods ready; pod api-` + hashRE + `-` + hashRE +
			`: container api CrashLoopBackOff \(last exit 1 Error, 4 restarts\)( \(and [12] more pods?\))?$`,
	},
	{
		name: "oomkilled", cause: OOMKilled, failFast: true,
		setup: deploymentCase("api", testenv.FailOOMKilled, 3),
		shown: lastTerminated("OOMKilled"),
		message: `^Deployment ` + nsRE + `/api: 0/3 updated pods ready; pod api-` + hashRE + `-` + hashRE +
			`: container api OOMKilled \(exit 137, 3 restarts\)( \(and [12] more pods?\))?$`,
	},
	{
		name: "imagepull", cause: ImagePull, failFast: true,
		setup: deploymentCase("api", testenv.FailImagePull, 3),
		shown: waitingReason("ErrImagePull"),
		message: `^Deployment ` + nsRE + `/api: 0/3 updated pods ready; pod api-` + hashRE + `-` + hashRE +
			`: container api cannot pull image "registry.example/api:1.0" \((ImagePullBackOff|ErrImagePull: pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed)\)( \(and [12] more pods?\))?$`,
	},
	{
		name: "readiness never true", cause: ProbeFailing,
		setup: deploymentCase("api", testenv.FailNotReady, 3),
		shown: runningNotReady,
		message: `^Deployment ` + nsRE + `/api: 0/3 updated pods ready; pod api-` + hashRE + `-` + hashRE +
			`: container api running but not ready( \(Readiness probe failed: HTTP probe failed with statuscode: 503\))?( \(and [12] more pods?\))?$`,
	},
	{
		name: "unschedulable", cause: Unschedulable,
		setup: func(t *testing.T, kube kubernetes.Interface, ns string) ObjectRef {
			d := deployment(ns, "api", 3, "")
			d.Spec.Template.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("1000")
			createDeployment(t, kube, d)
			return ref("Deployment", ns, "api")
		},
		shown: unschedulable,
		message: `^Deployment ` + nsRE + `/api: 0/3 updated pods ready; pod api-` + hashRE + `-` + hashRE +
			`: unschedulable: 0/3 nodes are available: 3 Insufficient cpu\.( \(and [12] more pods?\))?$`,
	},
	{
		name: "quota", cause: QuotaExceeded,
		setup: func(t *testing.T, kube kubernetes.Interface, ns string) ObjectRef {
			createQuota(t, kube, ns, 1)
			createDeployment(t, kube, deployment(ns, "api", 3, ""))
			return ref("Deployment", ns, "api")
		},
		// The Deployment controller copies its ReplicaSet's ReplicaFailure
		// condition: when the Deployment's watch event comes before the
		// ReplicaSet's, the cause is named from the Deployment (with its
		// own progress) a moment before the ReplicaSet is seen.
		message: `^Deployment ` + nsRE + `/api: ([01]/3 updated pods ready; replicaset api-` + hashRE + `|0/3 pods updated; deployment api)` +
			`: cannot create pods, refused by ResourceQuota "pods": exceeded quota: pods, requested: pods=1, used: pods=1, limited: pods=1$`,
	},
	{
		name: "missing configmap", cause: ConfigError,
		// kwok does not simulate CreateContainerConfigError. The pod is
		// labelled so that kwok leaves its status alone, and the status a
		// kubelet reports for a missing ConfigMap is written through the
		// pods/status subresource with the admin client once the scheduler
		// has bound it.
		setup: func(t *testing.T, kube kubernetes.Interface, ns string) ObjectRef {
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns, Labels: map[string]string{testenv.ManualStatusLabel: "true"}},
				Spec:       podSpec("app"),
			}
			pod.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "app-config"}}}}
			if _, err := kube.CoreV1().Pods(ns).Create(t.Context(), pod, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				writeConfigError(t, kube, ns, "app")
			}()
			t.Cleanup(func() { <-done })
			return ref("Pod", ns, "app")
		},
		shown:   waitingReason("CreateContainerConfigError"),
		message: `^Pod ` + nsRE + `/app: container app: configmap "app-config" not found \(CreateContainerConfigError\)$`,
	},
}

// TestWaitNamesCause reproduces each cause for real and checks the wait
// names it, with the pod and container at fault. For the closing note it
// logs the seconds from the cluster showing the cause to the checker
// naming it ("latency <cause>: ...").
func TestWaitNamesCause(t *testing.T) {
	for _, tc := range causeCases {
		t.Run(tc.name, func(t *testing.T) {
			kube := env.Clientset(t)
			ns := namespace(t, kube)
			var shownAt func(context.Context) time.Time
			if tc.shown != nil {
				pw := watchPods(t, kube, ns, map[string]func(*corev1.Pod) bool{tc.name: tc.shown})
				shownAt = func(ctx context.Context) time.Time { return pw.first(t, ctx, tc.name) }
			} else {
				ew := watchEvents(t, kube, ns, "FailedCreate")
				shownAt = func(ctx context.Context) time.Time { return ew.first(t, ctx) }
			}
			r := tc.setup(t, kube, ns)

			// A long timeout and a shorter test deadline: a fail-fast wait
			// that came back Degraded (not Cancelled) did not need the
			// timeout.
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			prog := newProgress()
			opts := WaitOptions{Timeout: 5 * time.Minute, OnProgress: func(rep Report) {
				prog.record(rep)
				if !tc.failFast && rep.Objects[0].Cause == tc.cause {
					cancel() // named: enough for a cause that does not end the wait
				}
			}}
			rep := newChecker(t).Wait(ctx, []ObjectRef{r}, opts)

			wantOverall := Degraded
			if !tc.failFast {
				wantOverall = Cancelled
			}
			if rep.Overall != wantOverall {
				t.Fatalf("overall %s, want %s: %s", rep.Overall, wantOverall, describe(rep))
			}
			o := rep.Objects[0]
			if o.Cause != tc.cause {
				t.Fatalf("cause %q, want %q: %s", o.Cause, tc.cause, describe(rep))
			}
			if !regexp.MustCompile(tc.message).MatchString(o.Message) {
				t.Errorf("message = %q\nwant match for %s", o.Message, tc.message)
			}
			if tc.failFast {
				if rep.Cause != tc.cause || rep.Message != o.Message || o.Status != Failed {
					t.Errorf("report cause %q status %s message %q, want the object's", rep.Cause, o.Status, rep.Message)
				}
			}
			// The wait's context may be cancelled by now.
			sctx, scancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer scancel()
			latency(t, tc.cause, shownAt(sctx), prog.firstNamed(t, tc.cause, rep))
		})
	}
}

func createQuota(t *testing.T, kube kubernetes.Interface, ns string, pods int64) {
	t.Helper()
	q := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: "pods"},
		Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: *resource.NewQuantity(pods, resource.DecimalSI)}},
	}
	if _, err := kube.CoreV1().ResourceQuotas(ns).Create(t.Context(), q, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Admission enforces a quota only once the quota controller has
	// computed its usage.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	w, err := kube.CoreV1().ResourceQuotas(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		if q, ok := ev.Object.(*corev1.ResourceQuota); ok && q.Status.Used != nil {
			return
		}
	}
	t.Fatalf("quota in %s: usage never computed", ns)
}

// writeConfigError writes the status a kubelet reports when a ConfigMap in
// envFrom is missing, once the pod is bound. It runs in its own goroutine
// so the wait is already watching when the status changes, as in
// production.
func writeConfigError(t *testing.T, kube kubernetes.Interface, ns, name string) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	err := writePodStatus(ctx, kube, ns, name, func(pod *corev1.Pod) {
		now := metav1.Now()
		pod.Status.Phase = corev1.PodPending
		pod.Status.Conditions = []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady", LastTransitionTime: now},
		}
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{{
			Name: name, Image: pod.Spec.Containers[0].Image,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
				Reason: "CreateContainerConfigError", Message: `configmap "app-config" not found`,
			}},
		}}
	})
	if err != nil && t.Context().Err() == nil {
		t.Error(err)
	}
}
